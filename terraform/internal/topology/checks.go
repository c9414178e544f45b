package topology

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// VariableProblems reports variables without a type or description, and
// password variables that are not sensitive or carry a default.
func (m *Module) VariableProblems() []string {
	var out []string
	for _, name := range sortedKeys(m.Variables) {
		attrs := m.Variables[name].Body.Attributes
		if attrs["type"] == nil {
			out = append(out, fmt.Sprintf("variable %s has no type", name))
		}
		if d := attrs["description"]; d == nil {
			out = append(out, fmt.Sprintf("variable %s has no description", name))
		} else if v, diags := d.Expr.Value(nil); diags.HasErrors() || v.Type() != cty.String || strings.TrimSpace(v.AsString()) == "" {
			out = append(out, fmt.Sprintf("variable %s has an empty description", name))
		}
		if strings.Contains(name, "password") {
			if s := attrs["sensitive"]; s == nil || !isTrue(s.Expr) {
				out = append(out, fmt.Sprintf("variable %s is a password but not sensitive = true", name))
			}
			if attrs["default"] != nil {
				out = append(out, fmt.Sprintf("variable %s is a password with a default", name))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Validate evaluates every validation block of variable name for value.
func (m *Module) Validate(name string, value cty.Value) (bool, error) {
	b := m.Variables[name]
	if b == nil {
		return false, fmt.Errorf("no variable %s", name)
	}
	ctx := m.ctx(nil, nil)
	ctx.Variables["var"] = cty.ObjectVal(map[string]cty.Value{name: value})
	ctx.Functions["floor"] = stdlib.FloorFunc
	ctx.Functions["can"] = tryfunc.CanFunc
	ctx.Functions["regex"] = stdlib.RegexFunc
	ctx.Functions["contains"] = stdlib.ContainsFunc
	var validations int
	for _, v := range b.Body.Blocks {
		if v.Type != "validation" {
			continue
		}
		validations++
		ok, diags := v.Body.Attributes["condition"].Expr.Value(ctx)
		if diags.HasErrors() {
			return false, diags
		}
		if ok.False() {
			return false, nil
		}
	}
	if validations == 0 {
		return false, fmt.Errorf("variable %s has no validation", name)
	}
	return true, nil
}

// ProviderSchema lists a resource's (or the provider's) argument names.
type ProviderSchema struct {
	Attributes []string            `json:"attributes"`
	Blocks     map[string][]string `json:"blocks"`
}

// metaArguments are Terraform's own, valid in every resource block.
var metaArguments = []string{"count", "for_each", "depends_on", "provider"}

// SchemaProblems reports arguments and blocks the provider does not define.
func (m *Module) SchemaProblems(kinds map[string]ProviderSchema) []string {
	var out []string
	check := func(where string, s ProviderSchema, body *hclsyntax.Body, meta bool) {
		for name := range body.Attributes {
			if !slices.Contains(s.Attributes, name) && !(meta && slices.Contains(metaArguments, name)) {
				out = append(out, fmt.Sprintf("%s: %s not in the provider schema", where, name))
			}
		}
		for _, b := range body.Blocks {
			if meta && b.Type == "lifecycle" {
				continue
			}
			typ, content := b.Type, b.Body
			if b.Type == "dynamic" { // Terraform's own: its content is checked as the block it makes
				typ = b.Labels[0]
				for _, c := range b.Body.Blocks {
					if c.Type == "content" {
						content = c.Body
					}
				}
			}
			args, ok := s.Blocks[typ]
			if !ok {
				out = append(out, fmt.Sprintf("%s: block %q not in the provider schema", where, typ))
				continue
			}
			for name := range content.Attributes {
				if !slices.Contains(args, name) {
					out = append(out, fmt.Sprintf("%s: %s.%s not in the provider schema", where, typ, name))
				}
			}
		}
	}
	for _, b := range m.Blocks {
		switch {
		case b.Type == "provider" && b.Labels[0] == "docker":
			// alias is Terraform's own argument of every provider block.
			body := *b.Body
			body.Attributes = maps.Clone(b.Body.Attributes)
			delete(body.Attributes, "alias")
			check("provider docker", kinds["provider"], &body, false)
		case b.Type == "resource":
			where := b.Labels[0] + "." + b.Labels[1]
			s, ok := kinds[b.Labels[0]]
			if !ok {
				out = append(out, where+": resource type not covered by testdata/provider-schema-v3.json")
				continue
			}
			check(where, s, b.Body, true)
		}
	}
	return out
}

func isTrue(e hclsyntax.Expression) bool {
	v, diags := e.Value(nil)
	return !diags.HasErrors() && v.Type() == cty.Bool && v.True()
}
