package topology

import (
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

	"gopkg.in/yaml.v3"
)

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

func LoadCompose(path string) (Topology, error) {
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
	top := Topology{}
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
	"networks_advanced", "ports", "upload", "volumes", "healthcheck", "lifecycle", "network_mode", "capabilities"}

func composeService(dir, name string, def map[string]any) (*Service, error) {
	for _, k := range sortedKeys(def) {
		if !slices.Contains(composeKeys, k) {
			return nil, fmt.Errorf("key %q is not compared with the Terraform module: extend terraform/internal/topology and main.tf", k)
		}
	}
	if deploy, ok := def["deploy"].(map[string]any); ok {
		for _, k := range sortedKeys(deploy) {
			if k != "replicas" {
				return nil, fmt.Errorf("key \"deploy.%s\" is not compared with the Terraform module: extend terraform/internal/topology and main.tf", k)
			}
		}
	}
	s := &Service{Name: name, Replicas: 1, Restart: "no", Depends: map[string]bool{}}
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
