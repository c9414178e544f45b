package topology

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// containers evaluates every docker_container instance into services keyed
// by network alias.
func (m *Module) containers() (Topology, error) {
	top := Topology{}
	waits := map[string]bool{}         // "docker_container.NAME" -> wait = true
	aliasesOf := map[string][]string{} // "docker_container.NAME" -> service names
	dependsOf := map[string][]string{} // service -> "docker_container.NAME" refs
	first := map[string]*Service{}     // per service, the first instance (others must match)
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

// InstanceSpec is one docker_container instance with every value evaluated:
// what the provider would send to the Docker API.
type InstanceSpec struct {
	Resource, Addr string   // docker_container.NAME, and with the instance key
	DependsOn      []string // docker_container.NAME of the depends_on list
	Name, Image    string
	Hostname       string
	Restart        string
	Env            []string // KEY=VALUE
	Command, Entry []string
	Network        string
	Aliases        []string
	NetworkMode    string   // "host": the host's network stack, no Network or Aliases
	CapAdd         []string // capabilities { add = [...] }
	Ports          []PortSpec
	Uploads        []UploadSpec
	Volumes        []VolumeSpec
	Health         *HealthSpec
	StopTimeout    int
	MemoryMiB      int // the memory argument (MiB); 0 for none
	LogDriver      string
	LogOpts        map[string]string
	Wait           bool
	WaitTimeout    int // seconds; the provider's default is 60
}

type PortSpec struct {
	Internal, External int
	IP, Protocol       string
}

type UploadSpec struct {
	File, Content string
	Executable    bool
}

type VolumeSpec struct{ Name, Path string }

type HealthSpec struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

func (m *Module) container(r *hclsyntax.Block, inst instance) (*Service, *InstanceSpec, error) {
	s := &Service{Replicas: 1, Restart: "no", Depends: map[string]bool{}}
	spec := &InstanceSpec{WaitTimeout: 60, LogOpts: map[string]string{}}
	var errs []error
	for name := range r.Body.Attributes {
		if !slices.Contains(containerArguments, name) {
			errs = append(errs, fmt.Errorf("argument %s is not compared with compose.yaml: extend terraform/internal/topology", name))
		}
	}
	blocks, err := m.expandBlocks(r.Body, inst)
	if err != nil {
		errs = append(errs, err)
	}
	for _, b := range blocks {
		if !slices.Contains(containerArguments, b.Type) {
			errs = append(errs, fmt.Errorf("block %s is not compared with compose.yaml: extend terraform/internal/topology", b.Type))
		}
	}
	cur := inst // the instance of the block being read: with the iterator of a dynamic block
	get := func(body *hclsyntax.Body, name string, files *[]string) (cty.Value, bool) {
		v, ok, err := m.evalAttr(body, name, cur, files)
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
		str, err := AsString(v)
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
		l, err := asStrings(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return l
	}
	getInt := func(body *hclsyntax.Body, name string) int {
		return parseOr(getString(body, name), name, strconv.Atoi, &errs)
	}
	getDuration := func(body *hclsyntax.Body, name string) time.Duration {
		return parseOr(getString(body, name), name, time.ParseDuration, &errs)
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
	spec.NetworkMode = getString(r.Body, "network_mode")
	s.Network = spec.NetworkMode
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
				str, err := AsString(e)
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
	for _, b := range blocks {
		cur = b.inst
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
			spec.Ports = append(spec.Ports, PortSpec{getInt(b.Body, "internal"), getInt(b.Body, "external"), ip, proto})
		case "upload":
			var files []string
			content, _ := get(b.Body, "content", &files)
			target := getString(b.Body, "file")
			if c, err := AsString(content); err == nil {
				spec.Uploads = append(spec.Uploads, UploadSpec{target, c, getString(b.Body, "executable") == "true"})
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
			spec.Volumes = append(spec.Volumes, VolumeSpec{getString(b.Body, "volume_name"), target})
		case "capabilities":
			spec.CapAdd = append(spec.CapAdd, getStrings(b.Body, "add")...)
			s.Caps = append(s.Caps, getStrings(b.Body, "add")...)
		case "healthcheck":
			retries, _ := strconv.Atoi(getString(b.Body, "retries"))
			spec.Health = &HealthSpec{getStrings(b.Body, "test"), getDuration(b.Body, "interval"),
				getDuration(b.Body, "timeout"), getDuration(b.Body, "start_period"), retries}
			s.Health = healthString(getStrings(b.Body, "test"), getString(b.Body, "interval"),
				getString(b.Body, "timeout"), getString(b.Body, "start_period"), retries)
		}
	}
	switch {
	case spec.NetworkMode == "host" && networks != 0:
		errs = append(errs, fmt.Errorf("network_mode host: want no networks_advanced block, got %d", networks))
	case spec.NetworkMode == "host":
		// No alias on the host's network: the container is its own service.
		s.Name = spec.Name
	case spec.NetworkMode != "":
		errs = append(errs, fmt.Errorf("network_mode %q: want host or none (a networks_advanced block)", spec.NetworkMode))
	case networks != 1:
		errs = append(errs, fmt.Errorf("want one networks_advanced block, got %d", networks))
	}
	sort.Strings(s.Caps)
	sort.Strings(s.Env)
	sort.Strings(s.Ports)
	sort.Strings(s.Files)
	sort.Strings(s.Volumes)
	return s, spec, errors.Join(errs...)
}

// parseOr parses the value s of attribute name: T's zero value for "", and a
// parse error is added to errs.
func parseOr[T any](s, name string, parse func(string) (T, error), errs *[]error) T {
	if s == "" {
		var zero T
		return zero
	}
	v, err := parse(s)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
	}
	return v
}

// block is a nested block as Terraform applies it: a block written out, or
// one element of a dynamic block (its content, with the iterator in inst).
type block struct {
	Type string
	Body *hclsyntax.Body
	inst instance
}

// expandBlocks lists the nested blocks of body for instance inst, each
// dynamic block expanded into one block per element of its for_each.
func (m *Module) expandBlocks(body *hclsyntax.Body, inst instance) ([]block, error) {
	var out []block
	var errs []error
	for _, b := range body.Blocks {
		if b.Type != "dynamic" {
			out = append(out, block{b.Type, b.Body, inst})
			continue
		}
		expanded, err := m.expandDynamic(b, inst)
		if err != nil {
			errs = append(errs, fmt.Errorf("dynamic %s: %w", b.Labels[0], err))
		}
		out = append(out, expanded...)
	}
	return out, errors.Join(errs...)
}

// expandDynamic expands one dynamic block: for_each (a list, set, map or
// object), iterator (the block's label by default) and one content block.
func (m *Module) expandDynamic(b *hclsyntax.Block, inst instance) ([]block, error) {
	for name := range b.Body.Attributes {
		if name != "for_each" && name != "iterator" {
			return nil, fmt.Errorf("argument %s is not supported", name)
		}
	}
	if len(b.Body.Blocks) != 1 || b.Body.Blocks[0].Type != "content" {
		return nil, errors.New("want exactly one content block")
	}
	content := b.Body.Blocks[0].Body
	for _, nested := range content.Blocks {
		if nested.Type == "dynamic" {
			return nil, errors.New("nested dynamic blocks are not supported")
		}
	}
	iterator := b.Labels[0]
	if a := b.Body.Attributes["iterator"]; a != nil {
		iterator = hcl.ExprAsKeyword(a.Expr)
		if iterator == "" {
			return nil, errors.New("iterator: want a name")
		}
	}
	a := b.Body.Attributes["for_each"]
	if a == nil {
		return nil, errors.New("for_each missing")
	}
	each, diags := a.Expr.Value(m.ctx(inst, nil))
	if diags.HasErrors() {
		return nil, fmt.Errorf("for_each: %w", diags)
	}
	if !each.IsWhollyKnown() || each.IsNull() || !each.CanIterateElements() {
		return nil, fmt.Errorf("for_each: want a known collection, got %s", each.Type().FriendlyName())
	}
	var out []block
	for it := each.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if each.Type().IsSetType() {
			k = v
		}
		elem := instance{iterator: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
		for name, val := range inst {
			if name != iterator {
				elem[name] = val
			}
		}
		out = append(out, block{b.Labels[0], content, elem})
	}
	return out, nil
}
