package topology

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// ModuleCall is one module block of a module, loaded: the child module
// evaluated with the arguments the call passes (each checked against the
// child's validation blocks, as Terraform does), and the Docker daemon of
// the provider configuration the call hands it.
type ModuleCall struct {
	Name       string   // the module block's label
	Source     string   // a local path, relative to the calling module
	Provider   string   // "docker.a": the configuration passed as docker; "docker" for the default one
	DockerHost string   // that configuration's host; "" when it sets none
	Module     *Module  // the child, evaluated
	Topology   Topology // the child's containers
	Args       []string // the argument names the call passes, sorted
	Specs      []*InstanceSpec
}

// Calls are the module calls of the module, loaded, in file order.
func (m *Module) Calls() []*ModuleCall { return m.loaded }

// callMeta are the arguments of a module block that are Terraform's own.
var callMeta = []string{"source", "providers", "count", "for_each", "depends_on", "version"}

// loadCalls loads every module block (local sources only) and makes the
// children's outputs available as module.NAME.OUTPUT.
func (m *Module) loadCalls() error {
	var errs []error
	for _, b := range m.calls {
		c, err := m.loadCall(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("module.%s: %w", b.Labels[0], err))
			continue
		}
		m.loaded = append(m.loaded, c)
		outs := map[string]cty.Value{}
		for name, o := range c.Module.Outputs {
			v, _, err := c.Module.EvalAttr(o.Body, "value")
			if err != nil {
				errs = append(errs, fmt.Errorf("module.%s: output %s: %w", c.Name, name, err))
				continue
			}
			outs[name] = v
		}
		if m.callVals == nil {
			m.callVals = map[string]cty.Value{}
		}
		m.callVals[c.Name] = cty.ObjectVal(outs)
	}
	return errors.Join(errs...)
}

func (m *Module) loadCall(b *hclsyntax.Block) (*ModuleCall, error) {
	c := &ModuleCall{Name: b.Labels[0]}
	for _, meta := range []string{"count", "for_each"} {
		if b.Body.Attributes[meta] != nil {
			return nil, fmt.Errorf("%s on a module call is not supported", meta)
		}
	}
	src, ok, err := m.evalAttr(b.Body, "source", nil, nil)
	if err != nil || !ok || src.Type() != cty.String {
		return nil, fmt.Errorf("source: want a string (%v)", err)
	}
	c.Source = src.AsString()
	provider, err := m.callProvider(b)
	if err != nil {
		return nil, err
	}
	c.Provider = provider
	if c.DockerHost, err = m.providerHost(provider); err != nil {
		return nil, err
	}
	args := map[string]cty.Value{}
	for name, a := range b.Body.Attributes {
		if slices.Contains(callMeta, name) {
			continue
		}
		v, diags := a.Expr.Value(m.ctx(nil, nil))
		if diags.HasErrors() {
			return nil, fmt.Errorf("argument %s: %w", name, diags)
		}
		args[name] = v
		c.Args = append(c.Args, name)
	}
	slices.Sort(c.Args)
	child, err := ParseModule(filepath.Join(m.Dir, c.Source))
	if err != nil {
		return nil, err
	}
	var invalid []error
	for _, name := range c.Args {
		if v := child.Variables[name]; v == nil || !hasValidation(v) {
			continue
		}
		ok, err := child.Validate(name, args[name])
		switch {
		case err != nil:
			invalid = append(invalid, fmt.Errorf("variable %s: validation: %w", name, err))
		case !ok:
			invalid = append(invalid, fmt.Errorf("variable %s: invalid value %s", name, args[name].GoString()))
		}
	}
	if len(invalid) > 0 {
		return nil, errors.Join(invalid...)
	}
	child.overrides = args
	if err := child.evaluate(); err != nil {
		return nil, err
	}
	if err := child.loadCalls(); err != nil {
		return nil, err
	}
	top, err := child.containers()
	if err != nil {
		return nil, err
	}
	c.Module, c.Topology, c.Specs = child, top, child.Specs()
	return c, nil
}

// callProvider is the docker provider configuration a module block passes
// (providers = { docker = docker.ALIAS }): "docker.ALIAS", or "docker" for
// the default configuration when the block passes none.
func (m *Module) callProvider(b *hclsyntax.Block) (string, error) {
	a := b.Body.Attributes["providers"]
	if a == nil {
		return "docker", nil
	}
	pairs, diags := hcl.ExprMap(a.Expr)
	if diags.HasErrors() {
		return "", fmt.Errorf("providers: %w", diags)
	}
	for _, p := range pairs {
		if hcl.ExprAsKeyword(p.Key) != "docker" {
			return "", fmt.Errorf("providers: only docker is supported, got %q", hcl.ExprAsKeyword(p.Key))
		}
		t, diags := hcl.AbsTraversalForExpr(p.Value)
		if diags.HasErrors() || t.RootName() != "docker" {
			return "", fmt.Errorf("providers: docker = want docker or docker.ALIAS")
		}
		if len(t) == 1 {
			return "docker", nil
		}
		attr, ok := t[1].(hcl.TraverseAttr)
		if !ok || len(t) != 2 {
			return "", fmt.Errorf("providers: docker = want docker.ALIAS")
		}
		return "docker." + attr.Name, nil
	}
	return "docker", nil
}

// providerHost is the host argument of the docker provider configuration
// named ref ("docker" or "docker.ALIAS") in this module.
func (m *Module) providerHost(ref string) (string, error) {
	for _, b := range m.Blocks {
		if b.Type != "provider" || b.Labels[0] != "docker" {
			continue
		}
		alias := ""
		if a := b.Body.Attributes["alias"]; a != nil {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() || v.Type() != cty.String {
				return "", fmt.Errorf("provider docker: alias: want a string")
			}
			alias = v.AsString()
		}
		if want := "docker"; alias != "" {
			want += "." + alias
			if want != ref {
				continue
			}
		} else if ref != "docker" {
			continue
		}
		v, ok, err := m.evalAttr(b.Body, "host", nil, nil)
		if err != nil {
			return "", fmt.Errorf("provider %s: %w", ref, err)
		}
		if !ok {
			return "", nil
		}
		return AsString(v)
	}
	if ref == "docker" {
		return "", nil // the implicit default configuration
	}
	return "", fmt.Errorf("no provider configuration %s", ref)
}

func hasValidation(v *hclsyntax.Block) bool {
	return slices.ContainsFunc(v.Body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "validation" })
}
