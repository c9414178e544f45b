package topology

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Module is a parsed root module (ParseModule) and, once loaded
// (LoadModule), its evaluated variables, locals, resource objects and
// container instances.
type Module struct {
	Dir       string                      // absolute
	Variables map[string]*hclsyntax.Block // variable blocks by name
	Outputs   map[string]*hclsyntax.Block // output blocks by name
	Blocks    []*hclsyntax.Block          // every top-level block (terraform, provider, ...)
	locals    map[string]*hclsyntax.Attribute
	resources []*hclsyntax.Block // every resource block, in file order
	calls     []*hclsyntax.Block // every module block, in file order

	vars      map[string]cty.Value
	overrides map[string]cty.Value // -var values, replacing defaults
	specs     []*InstanceSpec      // every docker_container instance, in file order
	localVals map[string]cty.Value
	objects   map[string]map[string]cty.Value // type -> name -> object (or map/tuple of objects)
	loaded    []*ModuleCall                   // the module calls, loaded (LoadModule)
	callVals  map[string]cty.Value            // module name -> object of its outputs
}

// ParseModule parses every .tf file of dir; nothing is evaluated yet.
func ParseModule(dir string) (*Module, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", dir, err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	m := &Module{
		Dir:       dir,
		Variables: map[string]*hclsyntax.Block{},
		Outputs:   map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
		vars:      map[string]cty.Value{},
		localVals: map[string]cty.Value{},
		objects:   map[string]map[string]cty.Value{},
	}
	parser := hclparse.NewParser()
	for _, p := range paths {
		f, diags := parser.ParseHCLFile(p)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", p, diags)
		}
		m.add(f.Body.(*hclsyntax.Body).Blocks)
	}
	return m, nil
}

// add files the top-level blocks of one file.
func (m *Module) add(blocks hclsyntax.Blocks) {
	for _, b := range blocks {
		m.Blocks = append(m.Blocks, b)
		switch b.Type {
		case "variable":
			m.Variables[b.Labels[0]] = b
		case "output":
			m.Outputs[b.Labels[0]] = b
		case "locals":
			for name, a := range b.Body.Attributes {
				m.locals[name] = a
			}
		case "resource":
			m.resources = append(m.resources, b)
		case "module":
			m.calls = append(m.calls, b)
		}
	}
}

// Option changes how LoadModule evaluates a module.
type Option func(*Module)

// WithVariables sets variable values as terraform -var does, replacing the
// defaults.
func WithVariables(values map[string]cty.Value) Option {
	return func(m *Module) { m.overrides = values }
}

// LoadModule parses, evaluates and lays out the module in dir as a
// topology. The module is returned with what was evaluated even when the
// evaluation fails.
func LoadModule(dir string, opts ...Option) (*Module, Topology, error) {
	m, err := ParseModule(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range opts {
		o(m)
	}
	if err := m.evaluate(); err != nil {
		return m, nil, err
	}
	if err := m.loadCalls(); err != nil {
		return m, nil, err
	}
	top, err := m.containers()
	return m, top, err
}

// Var is the value variable name took (its default, the WithVariables value
// or a placeholder); cty.NilVal before LoadModule or for no such variable.
func (m *Module) Var(name string) cty.Value { return m.vars[name] }

// Objects are the evaluated resources of one type (docker_image,
// docker_network, docker_volume) by name: an object, or for count a tuple
// and for for_each an object of objects by key.
func (m *Module) Objects(resourceType string) map[string]cty.Value { return m.objects[resourceType] }

// Specs are every docker_container instance, in file order.
func (m *Module) Specs() []*InstanceSpec { return m.specs }

// EvalAttr evaluates attribute name of a top-level body of the module
// (an output's value, say); ok is false when it is absent.
func (m *Module) EvalAttr(body *hclsyntax.Body, name string) (v cty.Value, ok bool, err error) {
	return m.evalAttr(body, name, nil, nil)
}
