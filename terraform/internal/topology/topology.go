// Package topology lays compose/compose.yaml and the Terraform module out in
// the same shape, a Topology (services by name), so the two can be compared
// aspect by aspect.
//
// The Terraform side is evaluated with a small HCL evaluator (Module):
// variables take their defaults or the values passed with WithVariables
// (variables without one get a "<var.NAME>" placeholder), locals and the
// non-container resources (images, network, volumes) are evaluated to a
// fixed point, and every docker_container instance (count or for_each) is
// evaluated on its own into an InstanceSpec. A container's service name is
// its single network alias: the name other containers resolve, as in Compose.
package topology

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Service is one Compose service or the Terraform containers sharing one alias.
type Service struct {
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
	Network  string          // network mode: "host", or "" for the project network
	Caps     []string        // added capabilities, sorted
	// Executable host files must be uploaded executable (Terraform only).
	Problems []string
}

// Topology is services by name.
type Topology map[string]*Service

// Names are the service names, sorted.
func (t Topology) Names() []string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Difference is one way in which compose.yaml and the module disagree.
type Difference struct {
	Aspect  string // see aspects in module_test.go
	Service string
	Msg     string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: service %q: %s", d.Aspect, d.Service, d.Msg)
}

// Compare lists every difference between the Compose and Terraform topologies.
func Compare(c, tf Topology) []Difference {
	var diffs []Difference
	add := func(aspect, svc, format string, args ...any) {
		diffs = append(diffs, Difference{aspect, svc, fmt.Sprintf(format, args...)})
	}
	for _, name := range c.Names() {
		if tf[name] == nil {
			add("services", name, "in compose, missing in terraform")
		}
	}
	for _, name := range tf.Names() {
		if c[name] == nil {
			add("services", name, "in terraform, missing in compose")
		}
	}
	for _, name := range c.Names() {
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
		if cs.Network != ts.Network || strings.Join(cs.Caps, ",") != strings.Join(ts.Caps, ",") {
			add("network", name, "compose network mode %q caps %q, terraform network mode %q caps %q", cs.Network, cs.Caps, ts.Network, ts.Caps)
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
