package terraform_test

// This file turns compose/compose.yaml and the Terraform module into the same
// shape (a topology: services by name) so module_test.go can compare them.
// The Terraform side is evaluated with a small HCL evaluator: variables take
// their defaults (variables without one get a "<var.NAME>" placeholder),
// locals and the non-container resources (images, network, volumes) are
// evaluated to a fixed point, and every docker_container instance (count or
// for_each) is evaluated on its own. A container's service name is its single
// network alias: the name other containers resolve, as in Compose.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"gopkg.in/yaml.v3"
)

// service is one Compose service or the Terraform containers sharing one alias.
type service struct {
	Name     string
	Image    string // repository only: tags come from a variable on both sides
	Replicas int
	Env      []string          // variable NAMES, sorted
	EnvValue map[string]string // values with defaults; "<required>" where a value must be supplied
	Ports    []string          // "ip:published:target/proto", sorted
	Files    []string          // "/abs/host/file -> /container/path", sorted
	Volumes  []string          // container paths of named volumes, sorted
	Health   string            // normalised healthcheck, "" when none
	Command  []string
	Entry    []string
	Restart  string
	Stop     string // stop grace period, "" for Docker's default
	Memory   string // memory limit in MiB ("512m"), "" for none
	Hostname string
	Logging  string          // "driver opt=value ...", "" for the daemon's default
	Depends  map[string]bool // service name -> must be healthy first
	// Executable host files must be uploaded executable (Terraform only).
	Problems []string
}

type topology map[string]*service

func (t topology) names() []string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// difference is one way in which compose.yaml and the module disagree.
type difference struct {
	Aspect  string // see aspects in module_test.go
	Service string
	Msg     string
}

func (d difference) String() string {
	return fmt.Sprintf("%s: service %q: %s", d.Aspect, d.Service, d.Msg)
}

// compare lists every difference between the Compose and Terraform topologies.
func compare(c, tf topology) []difference {
	var diffs []difference
	add := func(aspect, svc, format string, args ...any) {
		diffs = append(diffs, difference{aspect, svc, fmt.Sprintf(format, args...)})
	}
	for _, name := range c.names() {
		if tf[name] == nil {
			add("services", name, "in compose, missing in terraform")
		}
	}
	for _, name := range tf.names() {
		if c[name] == nil {
			add("services", name, "in terraform, missing in compose")
		}
	}
	for _, name := range c.names() {
		cs, ts := c[name], tf[name]
		if ts == nil {
			continue
		}
		for _, p := range ts.Problems {
			add("terraform", name, "%s", p)
		}
		if cs.Image != ts.Image {
			add("images", name, "compose image %q, terraform image %q", cs.Image, ts.Image)
		}
		if cs.Replicas != ts.Replicas {
			add("replicas", name, "compose runs %d, terraform runs %d", cs.Replicas, ts.Replicas)
		}
		setDiff(cs.Env, ts.Env, func(only, side string) { add("env", name, "env var %s only in %s", only, side) })
		for _, k := range sortedKeys(cs.EnvValue) {
			if tv, ok := ts.EnvValue[k]; ok && tv != cs.EnvValue[k] {
				add("env", name, "env var %s: compose %q, terraform %q (with the defaults)", k, cs.EnvValue[k], tv)
			}
		}
		setDiff(cs.Ports, ts.Ports, func(only, side string) { add("ports", name, "port %s only in %s", only, side) })
		setDiff(cs.Files, ts.Files, func(only, side string) { add("files", name, "config file %s only in %s", only, side) })
		setDiff(cs.Volumes, ts.Volumes, func(only, side string) { add("volumes", name, "named volume at %s only in %s", only, side) })
		if cs.Health != ts.Health {
			add("healthcheck", name, "compose %q, terraform %q", cs.Health, ts.Health)
		}
		if strings.Join(cs.Command, " ") != strings.Join(ts.Command, " ") {
			add("command", name, "compose command %q, terraform command %q", cs.Command, ts.Command)
		}
		if strings.Join(cs.Entry, " ") != strings.Join(ts.Entry, " ") {
			add("command", name, "compose entrypoint %q, terraform entrypoint %q", cs.Entry, ts.Entry)
		}
		if cs.Restart != ts.Restart {
			add("restart", name, "compose restart %q, terraform restart %q", cs.Restart, ts.Restart)
		}
		if cs.Stop != ts.Stop {
			add("stop", name, "compose stop_grace_period %q, terraform stop_timeout %q", cs.Stop, ts.Stop)
		}
		if cs.Memory != ts.Memory {
			add("memory", name, "compose mem_limit %q, terraform memory %q", cs.Memory, ts.Memory)
		}
		if cs.Hostname != ts.Hostname {
			add("hostname", name, "compose hostname %q, terraform hostname %q", cs.Hostname, ts.Hostname)
		}
		if cs.Logging != ts.Logging {
			add("logging", name, "compose logging %q, terraform logging %q", cs.Logging, ts.Logging)
		}
		for _, dep := range sortedKeys(cs.Depends) {
			healthy, ok := ts.Depends[dep]
			switch {
			case !ok:
				add("depends_on", name, "depends on %s in compose, not in terraform", dep)
			case cs.Depends[dep] && !healthy:
				add("depends_on", name, "compose waits for %s to be healthy, terraform does not (wait = true)", dep)
			}
		}
		for _, dep := range sortedKeys(ts.Depends) {
			if _, ok := cs.Depends[dep]; !ok {
				add("depends_on", name, "depends on %s in terraform, not in compose", dep)
			}
		}
	}
	return diffs
}

// memMiB parses a Compose memory size ("2048m", "2g", "512M", bytes
// without a unit) into MiB.
func memMiB(v string) (int, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	mult := 1.0 / (1 << 20)
	switch {
	case strings.HasSuffix(v, "g"):
		mult, v = 1024, strings.TrimSuffix(v, "g")
	case strings.HasSuffix(v, "m"):
		mult, v = 1, strings.TrimSuffix(v, "m")
	case strings.HasSuffix(v, "k"):
		mult, v = 1.0/1024, strings.TrimSuffix(v, "k")
	case strings.HasSuffix(v, "b"):
		v = strings.TrimSuffix(v, "b")
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a memory size", v)
	}
	return int(n * mult), nil
}

func setDiff(compose, tf []string, report func(only, side string)) {
	in := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, s := range compose {
		if !in(tf, s) {
			report(s, "compose")
		}
	}
	for _, s := range tf {
		if !in(compose, s) {
			report(s, "terraform")
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func repository(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

func healthString(test []string, interval, timeout, startPeriod string, retries int) string {
	if len(test) == 0 || test[0] == "NONE" {
		return ""
	}
	dur := func(s string) string {
		if s == "" {
			return "default"
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return "invalid(" + s + ")"
		}
		if d == 0 {
			return "default"
		}
		return d.String()
	}
	return fmt.Sprintf("test=%q interval=%s timeout=%s start_period=%s retries=%d",
		test, dur(interval), dur(timeout), dur(startPeriod), retries)
}

// ---------------------------------------------------------------- Compose

var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate resolves ${VAR:-default} as Compose does with an empty
// environment: the default when there is one, "<VAR>" otherwise.
func interpolate(s string) string {
	const dollar = "\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	s = interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if g[2] == ":-" || g[2] == "-" {
			return g[3]
		}
		name := g[1]
		if name == "" {
			name = g[4]
		}
		return "<" + name + ">"
	})
	return strings.ReplaceAll(s, dollar, "$")
}

func loadCompose(path string) (topology, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read compose file: %w", err)
	}
	var doc struct {
		Services map[string]map[string]any `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if len(doc.Services) == 0 {
		return nil, fmt.Errorf("%s: no services", path)
	}
	dir := filepath.Dir(path)
	top := topology{}
	var errs []error
	for name, def := range doc.Services {
		s, err := composeService(dir, name, def)
		if err != nil {
			errs = append(errs, fmt.Errorf("compose service %s: %w", name, err))
			continue
		}
		top[name] = s
	}
	return top, errors.Join(errs...)
}

// composeKeys are the service keys compare understands; any other key would
// be a setting the module may silently lack, so it fails the load.
var composeKeys = []string{"image", "deploy", "scale", "environment", "ports", "volumes", "healthcheck", "command",
	"entrypoint", "restart", "stop_grace_period", "hostname", "logging", "depends_on", "mem_limit"}

// containerArguments are the docker_container arguments compare understands
// (plus wait_timeout, name and Terraform's meta-arguments, which have no
// Compose counterpart to compare).
var containerArguments = []string{"name", "image", "env", "command", "entrypoint", "restart", "stop_timeout", "memory",
	"hostname", "log_driver", "log_opts", "wait", "wait_timeout", "count", "for_each", "depends_on",
	"networks_advanced", "ports", "upload", "volumes", "healthcheck", "lifecycle"}

func composeService(dir, name string, def map[string]any) (*service, error) {
	for _, k := range sortedKeys(def) {
		if !slices.Contains(composeKeys, k) {
			return nil, fmt.Errorf("key %q is not compared with the Terraform module: extend topology_test.go and main.tf", k)
		}
	}
	if deploy, ok := def["deploy"].(map[string]any); ok {
		for _, k := range sortedKeys(deploy) {
			if k != "replicas" {
				return nil, fmt.Errorf("key \"deploy.%s\" is not compared with the Terraform module: extend topology_test.go and main.tf", k)
			}
		}
	}
	s := &service{Name: name, Replicas: 1, Restart: "no", Depends: map[string]bool{}}
	s.Image = repository(interpolate(str(def["image"])))
	if deploy, ok := def["deploy"].(map[string]any); ok && deploy["replicas"] != nil {
		s.Replicas = num(deploy["replicas"])
	}
	if def["scale"] != nil {
		s.Replicas = num(def["scale"])
	}
	s.EnvValue = map[string]string{}
	switch env := def["environment"].(type) {
	case map[string]any:
		s.Env = sortedKeys(env)
		for k, v := range env {
			s.EnvValue[k] = envValue(interpolate(str(v)))
		}
	case []any:
		for _, e := range env {
			k, v, _ := strings.Cut(str(e), "=")
			s.Env = append(s.Env, k)
			s.EnvValue[k] = envValue(interpolate(v))
		}
	case nil:
	default:
		return nil, fmt.Errorf("environment: unexpected %T", env)
	}
	if def["env_file"] != nil {
		return nil, errors.New("env_file is not compared: list the variables under environment")
	}
	for _, p := range list(def["ports"]) {
		port, err := composePort(p)
		if err != nil {
			return nil, err
		}
		s.Ports = append(s.Ports, port)
	}
	for _, v := range list(def["volumes"]) {
		src, dst, typ := composeVolume(v)
		switch typ {
		case "bind":
			files, err := expandBind(filepath.Join(dir, src), dst)
			if err != nil {
				return nil, err
			}
			s.Files = append(s.Files, files...)
		case "volume":
			s.Volumes = append(s.Volumes, dst)
		}
	}
	if hc, ok := def["healthcheck"].(map[string]any); ok && hc["disable"] != true {
		var test []string
		switch t := hc["test"].(type) {
		case string:
			test = []string{"CMD-SHELL", t}
		case []any:
			for _, x := range t {
				test = append(test, str(x))
			}
		}
		s.Health = healthString(test, str(hc["interval"]), str(hc["timeout"]), str(hc["start_period"]), num(hc["retries"]))
	}
	s.Command = words(def["command"])
	s.Entry = words(def["entrypoint"])
	if r := str(def["restart"]); r != "" {
		s.Restart = r
	}
	if g := str(def["stop_grace_period"]); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil {
			return nil, fmt.Errorf("stop_grace_period: %w", err)
		}
		s.Stop = d.String()
	}
	if m := interpolate(str(def["mem_limit"])); m != "" {
		mib, err := memMiB(m)
		if err != nil {
			return nil, fmt.Errorf("mem_limit: %w", err)
		}
		s.Memory = fmt.Sprintf("%dm", mib)
	}
	s.Hostname = str(def["hostname"])
	if l, ok := def["logging"].(map[string]any); ok {
		opts, _ := l["options"].(map[string]any)
		s.Logging = logging(str(l["driver"]), opts)
	}
	switch deps := def["depends_on"].(type) {
	case []any:
		for _, d := range deps {
			s.Depends[str(d)] = false
		}
	case map[string]any:
		for d, spec := range deps {
			cond, _ := spec.(map[string]any)
			s.Depends[d] = cond != nil && cond["condition"] == "service_healthy"
		}
	}
	sort.Strings(s.Env)
	sort.Strings(s.Ports)
	sort.Strings(s.Files)
	sort.Strings(s.Volumes)
	return s, nil
}

func logging(driver string, opts map[string]any) string {
	out := driver
	for _, k := range sortedKeys(opts) {
		out += " " + k + "=" + str(opts[k])
	}
	return out
}

var placeholder = regexp.MustCompile(`<[A-Za-z_][A-Za-z0-9_.]*>`)

// envValue normalises a value: Compose's ${VAR:?...} and a Terraform variable
// without default both become "<required>".
func envValue(v string) string { return placeholder.ReplaceAllString(v, "<required>") }

func composePort(p any) (string, error) {
	ip, published, target, proto := "0.0.0.0", "", "", "tcp"
	switch p := p.(type) {
	case map[string]any:
		target, published = str(p["target"]), interpolate(str(p["published"]))
		if v := str(p["host_ip"]); v != "" {
			ip = interpolate(v)
		}
		if v := str(p["protocol"]); v != "" {
			proto = v
		}
	default:
		spec := interpolate(str(p))
		if rest, pr, ok := strings.Cut(spec, "/"); ok {
			spec, proto = rest, pr
		}
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			target = parts[0]
		case 2:
			published, target = parts[0], parts[1]
		case 3:
			ip, published, target = parts[0], parts[1], parts[2]
		default:
			return "", fmt.Errorf("port %q: unexpected form", spec)
		}
	}
	return fmt.Sprintf("%s:%s:%s/%s", ip, published, target, proto), nil
}

// composeVolume returns source, target and "bind" or "volume".
func composeVolume(v any) (string, string, string) {
	if m, ok := v.(map[string]any); ok {
		return interpolate(str(m["source"])), str(m["target"]), str(m["type"])
	}
	parts := strings.Split(interpolate(str(v)), ":")
	if len(parts) == 1 {
		return "", parts[0], "anonymous"
	}
	if strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") || strings.HasPrefix(parts[0], "~") {
		return parts[0], parts[1], "bind"
	}
	return parts[0], parts[1], "volume"
}

// expandBind lists a bind-mounted file, or every file under a bind-mounted
// directory, as "host -> container" pairs.
func expandBind(host, container string) ([]string, error) {
	host, err := filepath.Abs(host)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(host, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("bind mount source: %w", err)
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		out = append(out, p+" -> "+filepath.ToSlash(filepath.Join(container, rel)))
		return nil
	})
	return out, err
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func num(v any) int {
	n, _ := strconv.Atoi(interpolate(str(v)))
	return n
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, str(x))
		}
		return out
	}
	return nil
}

// -------------------------------------------------------------- Terraform

// module is a parsed root module.
type module struct {
	dir       string
	variables map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources []*hclsyntax.Block // every resource block, in file order
	blocks    []*hclsyntax.Block // every top-level block (terraform, provider, ...)

	vars      map[string]cty.Value
	overrides map[string]cty.Value // -var values, replacing defaults
	specs     []*instanceSpec      // every docker_container instance, in file order
	localVals map[string]cty.Value
	objects   map[string]map[string]cty.Value // type -> name -> object (or map/tuple of objects)
}

func parseModule(dir string) (*module, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	m := &module{
		dir:       dir,
		variables: map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
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
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			m.blocks = append(m.blocks, b)
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "output":
				m.outputs[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					m.locals[name] = a
				}
			case "resource":
				m.resources = append(m.resources, b)
			}
		}
	}
	return m, nil
}

// variableProblems reports variables without a type or description, and
// password variables that are not sensitive or carry a default.
func (m *module) variableProblems() []string {
	var out []string
	for _, name := range sortedKeys(m.variables) {
		attrs := m.variables[name].Body.Attributes
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

// validate evaluates every validation block of variable name for value.
func (m *module) validate(name string, value cty.Value) (bool, error) {
	b := m.variables[name]
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

// providerSchema lists a resource's (or the provider's) argument names.
type providerSchema struct {
	Attributes []string            `json:"attributes"`
	Blocks     map[string][]string `json:"blocks"`
}

// metaArguments are Terraform's own, valid in every resource block.
var metaArguments = []string{"count", "for_each", "depends_on", "provider"}

// schemaProblems reports arguments and blocks the provider does not define.
func (m *module) schemaProblems(kinds map[string]providerSchema) []string {
	var out []string
	check := func(where string, s providerSchema, body *hclsyntax.Body, meta bool) {
		for name := range body.Attributes {
			if !slices.Contains(s.Attributes, name) && !(meta && slices.Contains(metaArguments, name)) {
				out = append(out, fmt.Sprintf("%s: %s not in the provider schema", where, name))
			}
		}
		for _, b := range body.Blocks {
			if meta && b.Type == "lifecycle" {
				continue
			}
			args, ok := s.Blocks[b.Type]
			if !ok {
				out = append(out, fmt.Sprintf("%s: block %q not in the provider schema", where, b.Type))
				continue
			}
			for name := range b.Body.Attributes {
				if !slices.Contains(args, name) {
					out = append(out, fmt.Sprintf("%s: %s.%s not in the provider schema", where, b.Type, name))
				}
			}
		}
	}
	for _, b := range m.blocks {
		switch {
		case b.Type == "provider" && b.Labels[0] == "docker":
			check("provider docker", kinds["provider"], b.Body, false)
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

// evaluate computes variables, locals and non-container resource objects.
func (m *module) evaluate() error {
	for name, v := range m.overrides {
		if m.variables[name] == nil {
			return fmt.Errorf("override of undeclared variable %s", name)
		}
		m.vars[name] = v
	}
	for name, b := range m.variables {
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

func (m *module) instances(r *hclsyntax.Block) ([]instance, error) {
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
func (m *module) resourceObject(r *hclsyntax.Block) (cty.Value, error) {
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
func (m *module) ctx(inst instance, files *[]string) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(m.vars),
		"local": cty.ObjectVal(m.localVals),
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(m.dir), "root": cty.StringVal(m.dir), "cwd": cty.StringVal(m.dir),
		}),
	}
	for typ, objs := range m.objects {
		vars[typ] = cty.ObjectVal(objs)
	}
	for k, v := range inst {
		vars[k] = v
	}
	identity := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true}},
		Type:   function.StaticReturnType(cty.DynamicPseudoType),
		Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
	})
	file := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(m.dir, p)
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
		},
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
	tostring := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
	})
	// Terraform's sha256: hex of the SHA-256 of the string. Of a required
	// variable's placeholder it is a placeholder too: the value is derived
	// from one that must be supplied (compose's "<required>").
	sha := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "s", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if placeholder.MatchString(args[0].AsString()) {
				return cty.StringVal("<derived>"), nil
			}
			sum := sha256.Sum256([]byte(args[0].AsString()))
			return cty.StringVal(hex.EncodeToString(sum[:])), nil
		},
	})
	return &hcl.EvalContext{
		Variables: vars,
		Functions: map[string]function.Function{
			"sha256": sha, "file": file, "sensitive": identity, "nonsensitive": identity, "tostring": tostring, "toset": toset,
			"format": stdlib.FormatFunc, "join": stdlib.JoinFunc, "concat": stdlib.ConcatFunc,
			"merge": stdlib.MergeFunc, "lookup": stdlib.LookupFunc, "keys": stdlib.KeysFunc,
			"values": stdlib.ValuesFunc, "length": stdlib.LengthFunc, "flatten": stdlib.FlattenFunc,
			"coalesce": stdlib.CoalesceFunc, "upper": stdlib.UpperFunc, "lower": stdlib.LowerFunc,
			"replace": stdlib.ReplaceFunc, "trimspace": stdlib.TrimSpaceFunc, "range": stdlib.RangeFunc,
			"jsonencode": stdlib.JSONEncodeFunc, "split": stdlib.SplitFunc, "sort": stdlib.SortFunc,
			"max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		},
	}
}

// evalAttr evaluates an attribute of body; ok is false when it is absent.
func (m *module) evalAttr(body *hclsyntax.Body, name string, inst instance, files *[]string) (cty.Value, bool, error) {
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

func ctyStrings(v cty.Value) ([]string, error) {
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
		s, err := ctyString(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func ctyString(v cty.Value) (string, error) {
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

// containers evaluates every docker_container instance into services keyed
// by network alias.
func (m *module) containers() (topology, error) {
	top := topology{}
	waits := map[string]bool{}         // "docker_container.NAME" -> wait = true
	aliasesOf := map[string][]string{} // "docker_container.NAME" -> service names
	dependsOf := map[string][]string{} // service -> "docker_container.NAME" refs
	first := map[string]*service{}     // per service, the first instance (others must match)
	var errs []error
	for _, r := range m.resources {
		if r.Labels[0] != "docker_container" {
			continue
		}
		addr := "docker_container." + r.Labels[1]
		insts, err := m.instances(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		if w, ok, _ := m.evalAttr(r.Body, "wait", nil, nil); ok && w.Type() == cty.Bool && w.True() {
			waits[addr] = true
		}
		var refs []string
		if a := r.Body.Attributes["depends_on"]; a != nil {
			for _, t := range a.Expr.Variables() {
				if t.RootName() == "docker_container" && len(t) > 1 {
					if attr, ok := t[1].(hcl.TraverseAttr); ok {
						refs = append(refs, "docker_container."+attr.Name)
					}
				}
			}
		}
		for _, inst := range insts {
			s, spec, err := m.container(r, inst)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s%s: %w", addr, instKey(inst), err))
				continue
			}
			spec.Resource, spec.Addr, spec.DependsOn = addr, addr+instKey(inst), refs
			m.specs = append(m.specs, spec)
			aliasesOf[addr] = append(aliasesOf[addr], s.Name)
			dependsOf[s.Name] = refs
			if prev := first[s.Name]; prev != nil {
				prev.Replicas++
				a, b := *prev, *s
				a.Replicas, b.Replicas = 0, 0
				if fmt.Sprint(a) != fmt.Sprint(b) {
					prev.Problems = append(prev.Problems, fmt.Sprintf("instance %s%s differs from the first one", addr, instKey(inst)))
				}
				continue
			}
			first[s.Name] = s
			top[s.Name] = s
		}
	}
	for name, refs := range dependsOf {
		for _, ref := range refs {
			if _, ok := aliasesOf[ref]; !ok {
				errs = append(errs, fmt.Errorf("service %s depends on unknown %s", name, ref))
			}
			for _, dep := range aliasesOf[ref] {
				top[name].Depends[dep] = waits[ref]
			}
		}
	}
	return top, errors.Join(errs...)
}

func instKey(inst instance) string {
	if e, ok := inst["each"]; ok {
		return fmt.Sprintf("[%q]", e.GetAttr("key").AsString())
	}
	if c, ok := inst["count"]; ok {
		return "[" + c.GetAttr("index").AsBigFloat().Text('f', 0) + "]"
	}
	return ""
}

// instanceSpec is one docker_container instance with every value evaluated:
// what the provider would send to the Docker API.
type instanceSpec struct {
	Resource, Addr string   // docker_container.NAME, and with the instance key
	DependsOn      []string // docker_container.NAME of the depends_on list
	Name, Image    string
	Hostname       string
	Restart        string
	Env            []string // KEY=VALUE
	Command, Entry []string
	Network        string
	Aliases        []string
	Ports          []portSpec
	Uploads        []uploadSpec
	Volumes        []volumeSpec
	Health         *healthSpec
	StopTimeout    int
	MemoryMiB      int // the memory argument (MiB); 0 for none
	LogDriver      string
	LogOpts        map[string]string
	Wait           bool
	WaitTimeout    int // seconds; the provider's default is 60
}

type portSpec struct {
	Internal, External int
	IP, Protocol       string
}

type uploadSpec struct {
	File, Content string
	Executable    bool
}

type volumeSpec struct{ Name, Path string }

type healthSpec struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

func (m *module) container(r *hclsyntax.Block, inst instance) (*service, *instanceSpec, error) {
	s := &service{Replicas: 1, Restart: "no", Depends: map[string]bool{}}
	spec := &instanceSpec{WaitTimeout: 60, LogOpts: map[string]string{}}
	var errs []error
	for name := range r.Body.Attributes {
		if !slices.Contains(containerArguments, name) {
			errs = append(errs, fmt.Errorf("argument %s is not compared with compose.yaml: extend topology_test.go", name))
		}
	}
	for _, b := range r.Body.Blocks {
		if !slices.Contains(containerArguments, b.Type) && b.Type != "dynamic" {
			errs = append(errs, fmt.Errorf("block %s is not compared with compose.yaml: extend topology_test.go", b.Type))
		}
	}
	get := func(body *hclsyntax.Body, name string, files *[]string) (cty.Value, bool) {
		v, ok, err := m.evalAttr(body, name, inst, files)
		if err != nil {
			errs = append(errs, err)
			return cty.NullVal(cty.DynamicPseudoType), false
		}
		return v, ok
	}
	getString := func(body *hclsyntax.Body, name string) string {
		v, ok := get(body, name, nil)
		if !ok {
			return ""
		}
		str, err := ctyString(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return str
	}
	getStrings := func(body *hclsyntax.Body, name string) []string {
		v, ok := get(body, name, nil)
		if !ok {
			return nil
		}
		l, err := ctyStrings(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return l
	}
	getInt := func(body *hclsyntax.Body, name string) int {
		v := getString(body, name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return n
	}
	getDuration := func(body *hclsyntax.Body, name string) time.Duration {
		v := getString(body, name)
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return d
	}
	spec.Name = getString(r.Body, "name")
	spec.Image = getString(r.Body, "image")
	spec.Env = getStrings(r.Body, "env")
	spec.Hostname = getString(r.Body, "hostname")
	spec.StopTimeout = getInt(r.Body, "stop_timeout")
	spec.MemoryMiB = getInt(r.Body, "memory")
	if spec.MemoryMiB > 0 {
		s.Memory = fmt.Sprintf("%dm", spec.MemoryMiB)
	}
	spec.LogDriver = getString(r.Body, "log_driver")
	spec.Wait = getString(r.Body, "wait") == "true"
	if _, ok := r.Body.Attributes["wait_timeout"]; ok {
		spec.WaitTimeout = getInt(r.Body, "wait_timeout")
	}
	s.Image = repository(spec.Image)
	s.EnvValue = map[string]string{}
	for _, e := range getStrings(r.Body, "env") {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("env entry %q is not KEY=VALUE", e))
		}
		s.Env = append(s.Env, k)
		s.EnvValue[k] = envValue(v)
	}
	s.Command = getStrings(r.Body, "command")
	s.Entry = getStrings(r.Body, "entrypoint")
	spec.Command, spec.Entry = s.Command, s.Entry
	if v := getString(r.Body, "restart"); v != "" {
		s.Restart = v
	}
	spec.Restart = s.Restart
	if v := getString(r.Body, "stop_timeout"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("stop_timeout: %w", err))
		}
		s.Stop = (time.Duration(secs) * time.Second).String()
	}
	s.Hostname = getString(r.Body, "hostname")
	if driver := getString(r.Body, "log_driver"); driver != "" {
		opts := map[string]any{}
		if v, ok := get(r.Body, "log_opts", nil); ok && !v.IsNull() && v.CanIterateElements() {
			for it := v.ElementIterator(); it.Next(); {
				k, e := it.Element()
				str, err := ctyString(e)
				if err != nil {
					errs = append(errs, fmt.Errorf("log_opts: %w", err))
				}
				opts[k.AsString()] = str
				spec.LogOpts[k.AsString()] = str
			}
		}
		s.Logging = logging(driver, opts)
	}
	var networks int
	for _, b := range r.Body.Blocks {
		switch b.Type {
		case "networks_advanced":
			networks++
			aliases := getStrings(b.Body, "aliases")
			if len(aliases) != 1 {
				errs = append(errs, fmt.Errorf("networks_advanced: want exactly one alias (the service name), got %q", aliases))
				continue
			}
			s.Name = aliases[0]
			spec.Network, spec.Aliases = getString(b.Body, "name"), aliases
		case "ports":
			ip, published, proto := getString(b.Body, "ip"), getString(b.Body, "external"), getString(b.Body, "protocol")
			if ip == "" {
				ip = "0.0.0.0"
			}
			if proto == "" {
				proto = "tcp"
			}
			s.Ports = append(s.Ports, fmt.Sprintf("%s:%s:%s/%s", ip, published, getString(b.Body, "internal"), proto))
			spec.Ports = append(spec.Ports, portSpec{getInt(b.Body, "internal"), getInt(b.Body, "external"), ip, proto})
		case "upload":
			var files []string
			content, _ := get(b.Body, "content", &files)
			target := getString(b.Body, "file")
			if c, err := ctyString(content); err == nil {
				spec.Uploads = append(spec.Uploads, uploadSpec{target, c, getString(b.Body, "executable") == "true"})
			}
			if len(files) != 1 {
				errs = append(errs, fmt.Errorf("upload %s: content must be file(<a file of this repository>)", target))
				continue
			}
			s.Files = append(s.Files, files[0]+" -> "+target)
			if fi, err := os.Stat(files[0]); err == nil && fi.Mode()&0o111 != 0 && getString(b.Body, "executable") != "true" {
				s.Problems = append(s.Problems, fmt.Sprintf("upload %s: %s is executable, set executable = true", target, files[0]))
			}
		case "volumes":
			target := getString(b.Body, "container_path")
			if hp := getString(b.Body, "host_path"); hp != "" {
				files, err := expandBind(hp, target)
				if err != nil {
					errs = append(errs, err)
				}
				s.Files = append(s.Files, files...)
				continue
			}
			s.Volumes = append(s.Volumes, target)
			spec.Volumes = append(spec.Volumes, volumeSpec{getString(b.Body, "volume_name"), target})
		case "healthcheck":
			retries, _ := strconv.Atoi(getString(b.Body, "retries"))
			spec.Health = &healthSpec{getStrings(b.Body, "test"), getDuration(b.Body, "interval"),
				getDuration(b.Body, "timeout"), getDuration(b.Body, "start_period"), retries}
			s.Health = healthString(getStrings(b.Body, "test"), getString(b.Body, "interval"),
				getString(b.Body, "timeout"), getString(b.Body, "start_period"), retries)
		case "dynamic":
			errs = append(errs, fmt.Errorf("dynamic %s blocks are not compared: write the blocks out", b.Labels[0]))
		}
	}
	if networks != 1 {
		errs = append(errs, fmt.Errorf("want one networks_advanced block, got %d", networks))
	}
	sort.Strings(s.Env)
	sort.Strings(s.Ports)
	sort.Strings(s.Files)
	sort.Strings(s.Volumes)
	return s, spec, errors.Join(errs...)
}

// loadModule parses, evaluates and lays out a module as a topology.
func loadModule(dir string) (*module, topology, error) {
	return loadModuleWith(dir, nil)
}

// loadModuleWith is loadModule with variable values (terraform -var).
func loadModuleWith(dir string, overrides map[string]cty.Value) (*module, topology, error) {
	m, err := parseModule(dir)
	if err != nil {
		return nil, nil, err
	}
	m.overrides = overrides
	if err := m.evaluate(); err != nil {
		return m, nil, err
	}
	top, err := m.containers()
	return m, top, err
}
