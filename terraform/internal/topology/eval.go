package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// evaluate computes variables, locals and non-container resource objects.
func (m *Module) evaluate() error {
	for name, v := range m.overrides {
		if m.Variables[name] == nil {
			return fmt.Errorf("override of undeclared variable %s", name)
		}
		m.vars[name] = v
	}
	for name, b := range m.Variables {
		if _, ok := m.overrides[name]; ok {
			continue
		}
		if d := b.Body.Attributes["default"]; d != nil {
			v, diags := d.Expr.Value(nil)
			if diags.HasErrors() {
				return fmt.Errorf("variable %s default: %w", name, diags)
			}
			m.vars[name] = v
			continue
		}
		ty := cty.String
		if t := b.Body.Attributes["type"]; t != nil {
			var diags hcl.Diagnostics
			if ty, diags = typeexpr.TypeConstraint(t.Expr); diags.HasErrors() {
				return fmt.Errorf("variable %s type: %w", name, diags)
			}
		}
		if ty == cty.String {
			m.vars[name] = cty.StringVal("<var." + name + ">")
		} else {
			m.vars[name] = cty.UnknownVal(ty)
		}
	}
	// Locals and resource objects may refer to each other: evaluate them
	// until nothing new resolves.
	pendingLocals := map[string]bool{}
	for n := range m.locals {
		pendingLocals[n] = true
	}
	pendingRes := map[*hclsyntax.Block]bool{}
	for _, r := range m.resources {
		if r.Labels[0] != "docker_container" {
			pendingRes[r] = true
		}
	}
	for progress := true; progress; {
		progress = false
		for name := range pendingLocals {
			v, diags := m.locals[name].Expr.Value(m.ctx(nil, nil))
			if !diags.HasErrors() && v.IsWhollyKnown() {
				m.localVals[name] = v
				delete(pendingLocals, name)
				progress = true
			}
		}
		for r := range pendingRes {
			if obj, err := m.resourceObject(r); err == nil {
				if m.objects[r.Labels[0]] == nil {
					m.objects[r.Labels[0]] = map[string]cty.Value{}
				}
				m.objects[r.Labels[0]][r.Labels[1]] = obj
				delete(pendingRes, r)
				progress = true
			}
		}
	}
	var errs []error
	for name := range pendingLocals {
		_, diags := m.locals[name].Expr.Value(m.ctx(nil, nil))
		errs = append(errs, fmt.Errorf("local.%s does not evaluate: %v", name, diags))
	}
	for r := range pendingRes {
		_, err := m.resourceObject(r)
		errs = append(errs, fmt.Errorf("%s.%s does not evaluate: %w", r.Labels[0], r.Labels[1], err))
	}
	return errors.Join(errs...)
}

// instance is one expansion of a resource block (count or for_each).
type instance map[string]cty.Value // "each" and/or "count"

func (m *Module) instances(r *hclsyntax.Block) ([]instance, error) {
	if a := r.Body.Attributes["count"]; a != nil {
		v, diags := a.Expr.Value(m.ctx(nil, nil))
		if diags.HasErrors() || !v.IsKnown() || v.Type() != cty.Number {
			return nil, fmt.Errorf("count: %v", diags)
		}
		n, _ := v.AsBigFloat().Int64()
		out := make([]instance, n)
		for i := range out {
			out[i] = instance{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(i))})}
		}
		return out, nil
	}
	if a := r.Body.Attributes["for_each"]; a != nil {
		v, diags := a.Expr.Value(m.ctx(nil, nil))
		if diags.HasErrors() || !v.IsWhollyKnown() {
			return nil, fmt.Errorf("for_each: %v", diags)
		}
		var out []instance
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			if v.Type().IsSetType() {
				k = val
			}
			out = append(out, instance{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": val})})
		}
		return out, nil
	}
	return []instance{{}}, nil
}

// resourceObject evaluates a resource's top-level attributes into an object
// with the computed attributes the module may read (id, image_id).
func (m *Module) resourceObject(r *hclsyntax.Block) (cty.Value, error) {
	insts, err := m.instances(r)
	if err != nil {
		return cty.NilVal, err
	}
	one := func(inst instance) (cty.Value, error) {
		attrs := map[string]cty.Value{}
		for name, a := range r.Body.Attributes {
			if name == "count" || name == "for_each" || name == "depends_on" {
				continue
			}
			v, diags := a.Expr.Value(m.ctx(inst, nil))
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			attrs[name] = v
		}
		if n, ok := attrs["name"]; ok {
			attrs["id"], attrs["image_id"] = n, n
		}
		return cty.ObjectVal(attrs), nil
	}
	switch {
	case r.Body.Attributes["for_each"] != nil:
		byKey := map[string]cty.Value{}
		for _, inst := range insts {
			v, err := one(inst)
			if err != nil {
				return cty.NilVal, err
			}
			byKey[inst["each"].GetAttr("key").AsString()] = v
		}
		return cty.ObjectVal(byKey), nil
	case r.Body.Attributes["count"] != nil:
		var vals []cty.Value
		for _, inst := range insts {
			v, err := one(inst)
			if err != nil {
				return cty.NilVal, err
			}
			vals = append(vals, v)
		}
		return cty.TupleVal(vals), nil
	}
	return one(insts[0])
}

// ctx builds the evaluation context; files, when not nil, records every
// path that file() reads.
func (m *Module) ctx(inst instance, files *[]string) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(m.vars),
		"local": cty.ObjectVal(m.localVals),
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(m.Dir), "root": cty.StringVal(m.Dir), "cwd": cty.StringVal(m.Dir),
		}),
	}
	for typ, objs := range m.objects {
		vars[typ] = cty.ObjectVal(objs)
	}
	if len(m.callVals) > 0 {
		vars["module"] = cty.ObjectVal(m.callVals)
	}
	for k, v := range inst {
		vars[k] = v
	}
	identity := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true}},
		Type:   function.StaticReturnType(cty.DynamicPseudoType),
		Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
	})
	file := stringFunc("path", func(p string) (cty.Value, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(m.Dir, p)
		}
		p = filepath.Clean(p)
		raw, err := os.ReadFile(p)
		if err != nil {
			return cty.NilVal, err
		}
		if files != nil {
			*files = append(*files, p)
		}
		return cty.StringVal(string(raw)), nil
	})
	toset := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.List(cty.String)}},
		Type:   function.StaticReturnType(cty.Set(cty.String)),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if args[0].LengthInt() == 0 {
				return cty.SetValEmpty(cty.String), nil
			}
			return cty.SetVal(args[0].AsValueSlice()), nil
		},
	})
	tostring := stringFunc("v", func(s string) (cty.Value, error) { return cty.StringVal(s), nil })
	// Terraform's sha256: hex of the SHA-256 of the string. Of a required
	// variable's placeholder it is a placeholder too: the value is derived
	// from one that must be supplied (compose's "<required>").
	sha := stringFunc("s", func(s string) (cty.Value, error) {
		if placeholder.MatchString(s) {
			return cty.StringVal("<derived>"), nil
		}
		sum := sha256.Sum256([]byte(s))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	})
	funcs := map[string]function.Function{
		"sha256": sha, "file": file, "sensitive": identity, "nonsensitive": identity, "tostring": tostring, "toset": toset,
		"format": stdlib.FormatFunc, "join": stdlib.JoinFunc, "concat": stdlib.ConcatFunc,
		"merge": stdlib.MergeFunc, "lookup": stdlib.LookupFunc, "keys": stdlib.KeysFunc,
		"values": stdlib.ValuesFunc, "length": length, "flatten": stdlib.FlattenFunc,
		"coalesce": stdlib.CoalesceFunc, "upper": stdlib.UpperFunc, "lower": stdlib.LowerFunc,
		"replace": stdlib.ReplaceFunc, "trimspace": stdlib.TrimSpaceFunc, "range": stdlib.RangeFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "split": stdlib.SplitFunc, "sort": stdlib.SortFunc,
		"max": stdlib.MaxFunc, "min": stdlib.MinFunc, "distinct": stdlib.DistinctFunc,
		"contains": stdlib.ContainsFunc, "alltrue": alltrue, "formatlist": stdlib.FormatListFunc,
	}
	ctx := &hcl.EvalContext{Variables: vars, Functions: funcs}
	funcs["templatefile"] = m.templatefile(ctx, files)
	return ctx
}

// length is Terraform's: of a string its length in characters, else of
// a collection its element count.
var length = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// alltrue is Terraform's: true when every element of a list of bools is true.
var alltrue = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			if _, v := it.Element(); v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

// templatefile is Terraform's: the file at path (relative to the module)
// rendered as a string template with the variables of vars (an object or
// map) and the functions of ctx; files, when not nil, records the path as
// file() does.
func (m *Module) templatefile(ctx *hcl.EvalContext, files *[]string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(m.Dir, p)
			}
			p = filepath.Clean(p)
			raw, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, err
			}
			tmpl, diags := hclsyntax.ParseTemplate(raw, p, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("templatefile %s: %w", p, diags)
			}
			if !args[1].Type().IsObjectType() && !args[1].Type().IsMapType() {
				return cty.NilVal, fmt.Errorf("templatefile %s: vars must be an object or map", p)
			}
			vars := map[string]cty.Value{}
			for it := args[1].ElementIterator(); it.Next(); {
				k, v := it.Element()
				vars[k.AsString()] = v
			}
			v, diags := tmpl.Value(&hcl.EvalContext{Variables: vars, Functions: ctx.Functions})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("templatefile %s: %w", p, diags)
			}
			if files != nil {
				*files = append(*files, p)
			}
			return v, nil
		},
	})
}

// stringFunc is a function of one string argument returning a string.
func stringFunc(param string, impl func(s string) (cty.Value, error)) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: param, Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return impl(args[0].AsString()) },
	})
}

// evalAttr evaluates an attribute of body; ok is false when it is absent.
func (m *Module) evalAttr(body *hclsyntax.Body, name string, inst instance, files *[]string) (cty.Value, bool, error) {
	a := body.Attributes[name]
	if a == nil {
		return cty.NilVal, false, nil
	}
	v, diags := a.Expr.Value(m.ctx(inst, files))
	if diags.HasErrors() {
		return cty.NilVal, true, fmt.Errorf("%s: %w", name, diags)
	}
	return v, true, nil
}

// asStrings is a list of strings (AsString of each element); nil for null.
func asStrings(v cty.Value) ([]string, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsWhollyKnown() {
		return nil, errors.New("value not known before apply")
	}
	if !v.CanIterateElements() {
		return nil, fmt.Errorf("want a list, got %s", v.Type().FriendlyName())
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		s, err := AsString(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// AsString is a string, number or bool value as Terraform would print it;
// "" for null, an error for an unknown value or any other type.
func AsString(v cty.Value) (string, error) {
	if v.IsNull() {
		return "", nil
	}
	if !v.IsKnown() {
		return "", errors.New("value not known before apply")
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	case cty.Bool:
		return strconv.FormatBool(v.True()), nil
	}
	return "", fmt.Errorf("want a string, got %s", v.Type().FriendlyName())
}
