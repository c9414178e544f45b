package terraform_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sluice-ingest/sluice/terraform/internal/topology"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// multihostVars are the terraform/multihost variables of a deployment on three
// hosts; edit changes some of them.
func multihostVars(edit func(map[string]cty.Value)) map[string]cty.Value {
	obj := func(a, b, c string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"a": cty.StringVal(a), "b": cty.StringVal(b), "c": cty.StringVal(c)})
	}
	vars := map[string]cty.Value{
		"docker_hosts":           obj("ssh://root@10.0.1.11", "ssh://root@10.0.2.11", "tcp://10.0.3.11:2376"),
		"addresses":              obj("10.0.1.11", "10.0.2.11", "10.0.3.11"),
		"image_tag":              cty.StringVal("v1"),
		"redis_password":         cty.StringVal("multihost-test-password"),
		"haproxy_stats_password": cty.StringVal("stats-password"),
		"vip":                    cty.StringVal("10.0.1.100"),
	}
	if edit != nil {
		edit(vars)
	}
	return vars
}

// envOf is the KEY=VALUE environment of spec as a map.
func envOf(spec *topology.InstanceSpec) map[string]string {
	env := map[string]string{}
	for _, e := range spec.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	return env
}

// TestMultihostPlacement evaluates terraform/multihost for three hosts: each
// domain is a module call on its own provider alias, with one Redis node, one
// Sentinel and the ingest count; HAProxy only on a and b; every container on
// the host network, announcing its host's address.
func TestMultihostPlacement(t *testing.T) {
	m, _, err := topology.LoadModule("multihost", topology.WithVariables(multihostVars(nil)))
	if err != nil {
		t.Fatalf("load multihost: %v", err)
	}
	hosts := map[string]string{"a": "10.0.1.11", "b": "10.0.2.11", "c": "10.0.3.11"}
	dockerHosts := map[string]string{"a": "ssh://root@10.0.1.11", "b": "ssh://root@10.0.2.11", "c": "tcp://10.0.3.11:2376"}
	sentinels := "10.0.1.11:26379,10.0.2.11:26379,10.0.3.11:26379"
	calls := m.Calls()
	if len(calls) != 3 {
		t.Fatalf("%d module calls, want 3 (a, b, c)", len(calls))
	}
	for _, c := range calls {
		t.Run(c.Name, func(t *testing.T) {
			if c.Provider != "docker."+c.Name || c.DockerHost != dockerHosts[c.Name] {
				t.Errorf("provider %s host %q, want docker.%s host %q", c.Provider, c.DockerHost, c.Name, dockerHosts[c.Name])
			}
			if filepath.Base(c.Source) != "node" {
				t.Errorf("source %s, want ../modules/node", c.Source)
			}
			count := map[string]int{}
			for _, s := range c.Specs {
				kind := strings.TrimPrefix(s.Resource, "docker_container.")
				if kind == "redis" { // the Redis node and the Sentinel: one block, by role
					kind = s.Command[0]
				}
				count[kind]++
				if s.NetworkMode != "host" || s.Network != "" {
					t.Errorf("%s: network mode %q network %q, want the host network", s.Name, s.NetworkMode, s.Network)
				}
				if !strings.HasPrefix(s.Name, "sluice-"+c.Name+"-") {
					t.Errorf("container %s: want the prefix sluice-%s-", s.Name, c.Name)
				}
				env := envOf(s)
				switch kind {
				case "redis", "sentinel":
					if env["REDIS_ANNOUNCE_HOST"] != hosts[c.Name] || env["REDIS_SENTINELS"] != sentinels || env["REDIS_INITIAL_MASTER"] != hosts["a"] {
						t.Errorf("%s announces %q, Sentinels %q, initial master %q; want %s, %s, %s", s.Name,
							env["REDIS_ANNOUNCE_HOST"], env["REDIS_SENTINELS"], env["REDIS_INITIAL_MASTER"], hosts[c.Name], sentinels, hosts["a"])
					}
					if env["REDIS_PORT"] != "6379" || env["SENTINEL_PORT"] != "26379" {
						t.Errorf("%s ports %s/%s", s.Name, env["REDIS_PORT"], env["SENTINEL_PORT"])
					}
				case "ingest":
					if env["INGEST_SENTINEL_ADDRS"] != sentinels || env["INGEST_MIN_REPLICAS"] != "2" {
						t.Errorf("%s: Sentinels %q min replicas %q", s.Name, env["INGEST_SENTINEL_ADDRS"], env["INGEST_MIN_REPLICAS"])
					}
				case "haproxy":
					if !slices.Equal(s.CapAdd, []string{"NET_ADMIN", "NET_RAW"}) {
						t.Errorf("%s caps %q, want NET_ADMIN NET_RAW with a vip", s.Name, s.CapAdd)
					}
					if env["KEEPALIVED_VIP"] != "10.0.1.100" || env["KEEPALIVED_UNICAST_SRC_IP"] != hosts[c.Name] {
						t.Errorf("%s keepalived env %q", s.Name, env)
					}
					cfg := s.Uploads[0].Content
					servers := regexp.MustCompile(`(?m)^\s*server (\S+) (\S+) check port (\d+)`).FindAllStringSubmatch(cfg, -1)
					if len(servers) != 3*3*2 { // three backends x three hosts x two containers
						t.Errorf("%d server lines, want 18:\n%s", len(servers), cfg)
					}
					for h, addr := range hosts {
						if !strings.Contains(cfg, " "+addr+":9600 check port 9603") || !strings.Contains(cfg, " "+addr+":9611 check port 9613") {
							t.Errorf("haproxy.cfg of %s lacks host %s's ingest containers", c.Name, h)
						}
					}
				}
			}
			want := map[string]int{"redis": 1, "sentinel": 1, "ingest": 2}
			if c.Name != "c" {
				want["haproxy"] = 1
			}
			if len(count) != len(want) {
				t.Errorf("containers %v, want %v", count, want)
			}
			for k, n := range want {
				if count[k] != n {
					t.Errorf("%d %s containers, want %d", count[k], k, n)
				}
			}
		})
	}
	t.Run("priorities", func(t *testing.T) {
		prio := map[string]string{}
		for _, c := range calls {
			for _, s := range c.Specs {
				if s.Resource == "docker_container.haproxy" {
					prio[c.Name] = envOf(s)["KEEPALIVED_PRIORITY"] + " peer " + envOf(s)["KEEPALIVED_UNICAST_PEER"]
				}
			}
		}
		if prio["a"] != "150 peer 10.0.2.11" || prio["b"] != "100 peer 10.0.1.11" {
			t.Errorf("keepalived a %q, b %q; want a primary (150) peering b, b backup (100) peering a", prio["a"], prio["b"])
		}
	})
	t.Run("outputs", func(t *testing.T) {
		want := map[string]string{
			"ingest_endpoint":    "10.0.1.100:9501",
			"redis_endpoints":    `{"a":"10.0.1.11:6379","b":"10.0.2.11:6379","c":"10.0.3.11:6379"}`,
			"sentinel_endpoints": `{"a":"10.0.1.11:26379","b":"10.0.2.11:26379","c":"10.0.3.11:26379"}`,
			"ingest_endpoints":   `{"a":["10.0.1.11:9600","10.0.1.11:9610"],"b":["10.0.2.11:9600","10.0.2.11:9610"],"c":["10.0.3.11:9600","10.0.3.11:9610"]}`,
			"haproxy_endpoints":  `{"a":{"http":"http://10.0.1.11:9502/v1/messages","ingest":"10.0.1.11:9501","noack":"10.0.1.11:9503","stats":"http://10.0.1.11:8404/stats"},"b":{"http":"http://10.0.2.11:9502/v1/messages","ingest":"10.0.2.11:9501","noack":"10.0.2.11:9503","stats":"http://10.0.2.11:8404/stats"}}`,
		}
		for name, b := range m.Outputs {
			if b.Body.Attributes["description"] == nil {
				t.Errorf("output %s has no description", name)
			}
		}
		for name, w := range want {
			b := m.Outputs[name]
			if b == nil {
				t.Errorf("output %s missing", name)
				continue
			}
			v, _, err := m.EvalAttr(b.Body, "value")
			if err != nil {
				t.Fatalf("output %s: %v", name, err)
			}
			got, err := jsonString(v)
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("output %s = %s, want %s", name, got, w)
			}
		}
	})
}

// jsonString is a value as Terraform's jsonencode writes it (strings bare).
func jsonString(v cty.Value) (string, error) {
	if v.Type() == cty.String {
		return v.AsString(), nil
	}
	raw, err := ctyjson.Marshal(v, v.Type())
	return string(raw), err
}

// TestMultihostValidation: the variables of modules/node and terraform/multihost
// reject bad ports, addresses, durations and priorities, and a module call
// with a bad value fails to load, as terraform plan would.
func TestMultihostValidation(t *testing.T) {
	three := func(a, b, c string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"a": cty.StringVal(a), "b": cty.StringVal(b), "c": cty.StringVal(c)})
	}
	list := func(s ...string) cty.Value {
		var vals []cty.Value
		for _, x := range s {
			vals = append(vals, cty.StringVal(x))
		}
		return cty.ListVal(vals)
	}
	cases := []struct {
		dir, variable string
		value         cty.Value
		valid         bool
	}{
		{"modules/node", "redis_port", cty.NumberIntVal(6379), true},
		{"modules/node", "redis_port", cty.NumberIntVal(0), false},
		{"modules/node", "redis_port", cty.NumberIntVal(65536), false},
		{"modules/node", "sentinel_port", cty.NumberFloatVal(26379.5), false},
		{"modules/node", "ingest_port", cty.NumberIntVal(-1), false},
		{"modules/node", "stats_port", cty.NumberIntVal(70000), false},
		{"modules/node", "ingest_port_base", cty.NumberIntVal(80), false},
		{"modules/node", "ingest_port_base", cty.NumberIntVal(65500), false},
		{"modules/node", "address", cty.StringVal("10.0.1.11"), true},
		{"modules/node", "address", cty.StringVal("10.0.1.256"), false},
		{"modules/node", "address", cty.StringVal("host-a"), false},
		{"modules/node", "address", cty.StringVal("10.0.1"), false},
		{"modules/node", "addresses", list("10.0.1.11", "10.0.2.11", "10.0.3.11"), true},
		{"modules/node", "addresses", list("10.0.1.11", "10.0.1.11", "10.0.3.11"), false},
		{"modules/node", "addresses", list("10.0.1.11", "10.0.2.11"), false},
		{"modules/node", "addresses", list("10.0.1.11", "10.0.2.11", "b"), false},
		{"modules/node", "vip", cty.StringVal(""), true},
		{"modules/node", "vip", cty.StringVal("10.0.1.300"), false},
		{"modules/node", "vrrp_peer", cty.StringVal("peer"), false},
		{"modules/node", "vrrp_priority", cty.NumberIntVal(255), false},
		{"modules/node", "vrrp_router_id", cty.NumberIntVal(0), false},
		{"modules/node", "vip_interface", cty.StringVal("eth0; rm -rf /"), false},
		{"modules/node", "ingest_drain_delay", cty.StringVal("3s"), true},
		{"modules/node", "ingest_drain_delay", cty.StringVal("3"), false},
		{"modules/node", "ingest_drain_delay", cty.StringVal("soon"), false},
		{"modules/node", "sentinel_down_after_ms", cty.NumberIntVal(10), false},
		{"modules/node", "domain", cty.StringVal("A"), false},
		{"multihost", "addresses", three("10.0.1.11", "10.0.2.11", "10.0.3.11"), true},
		{"multihost", "addresses", three("10.0.1.11", "10.0.1.11", "10.0.3.11"), false},
		{"multihost", "addresses", three("10.0.1.11", "10.0.2.11", "::1"), false},
		{"multihost", "docker_hosts", three("unix:///var/run/docker.sock", "ssh://u@b", "tcp://c:2376"), true},
		{"multihost", "docker_hosts", three("unix:///var/run/docker.sock", "b:2376", "tcp://c:2376"), false},
		{"multihost", "redis_port", cty.NumberIntVal(0), false},
		{"multihost", "vip", cty.StringVal("vip"), false},
	}
	mods := map[string]*topology.Module{}
	for _, tc := range cases {
		t.Run(tc.dir+"/"+tc.variable+"="+tc.value.GoString(), func(t *testing.T) {
			m := mods[tc.dir]
			if m == nil {
				var err error
				if m, err = topology.ParseModule(tc.dir); err != nil {
					t.Fatal(err)
				}
				mods[tc.dir] = m
			}
			ok, err := m.Validate(tc.variable, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.valid {
				t.Errorf("valid %v, want %v", ok, tc.valid)
			}
		})
	}
	t.Run("a module call with a bad value fails", func(t *testing.T) {
		_, _, err := topology.LoadModule("multihost", topology.WithVariables(multihostVars(func(v map[string]cty.Value) {
			v["ingest_port"] = cty.NumberIntVal(70000)
		})))
		if err == nil || !strings.Contains(err.Error(), "module.a: variable ingest_port: invalid value") {
			t.Errorf("load error %v, want module.a's ingest_port rejected", err)
		}
	})
}

// TestModulesConfigureNoProvider: reusable modules get their Docker host from
// the caller (providers = {...}); provider blocks live only in roots.
func TestModulesConfigureNoProvider(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("modules", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no modules: %v", err)
	}
	for _, dir := range dirs {
		m, err := topology.ParseModule(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range m.Blocks {
			if b.Type == "provider" {
				t.Errorf("%s configures provider %s: move it to the root or examples/", dir, b.Labels[0])
			}
		}
		if problems := m.VariableProblems(); len(problems) > 0 {
			t.Errorf("%s: %q", dir, problems)
		}
	}
}

// TestMultihostHAProxyConfigChecks: the haproxy.cfg modules/node renders for
// HAProxy on a passes `haproxy -c` (when haproxy is installed).
func TestMultihostHAProxyConfigChecks(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy is required in CI: %v", err)
		}
		t.Skipf("haproxy not installed: %v", err)
	}
	m, _, err := topology.LoadModule("multihost", topology.WithVariables(multihostVars(nil)))
	if err != nil {
		t.Fatal(err)
	}
	var cfg string
	for _, s := range m.Calls()[0].Specs {
		if s.Resource == "docker_container.haproxy" {
			cfg = s.Uploads[0].Content
		}
	}
	if cfg == "" {
		t.Fatal("no haproxy container in domain a")
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", "-f", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HAPROXY_STATS_PASSWORD=x"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("haproxy -c: %v\n%s", err, out)
	}
}

// TestEveryVariableValidated: in every root and module, each variable where
// a bad value is possible has a validation block (booleans and free-form
// lists excepted), and the single-host root's new validations accept the
// defaults and reject bad values.
func TestEveryVariableValidated(t *testing.T) {
	free := map[string]bool{"docker_ssh_opts": true} // ssh options: anything ssh accepts
	for _, dir := range []string{".", "multihost", filepath.Join("modules", "node")} {
		m, err := topology.ParseModule(dir)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range m.Variables {
			if free[name] {
				continue
			}
			if ty := b.Body.Attributes["type"]; ty != nil {
				if v, ok := ty.Expr.(interface{ Variables() []hcl.Traversal }); ok && len(v.Variables()) == 1 && v.Variables()[0].RootName() == "bool" {
					continue
				}
			}
			if !slices.ContainsFunc(b.Body.Blocks, func(x *hclsyntax.Block) bool { return x.Type == "validation" }) {
				t.Errorf("%s: variable %s has no validation", dir, name)
			}
		}
	}
	m, err := topology.ParseModule(".")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		variable string
		value    cty.Value
		valid    bool
	}{
		{"bind_address", cty.StringVal("127.0.0.1"), true},
		{"bind_address", cty.StringVal("localhost"), false},
		{"docker_host", cty.StringVal("unix:///var/run/docker.sock"), true},
		{"docker_host", cty.StringVal("/var/run/docker.sock"), false},
		{"backup_interval", cty.StringVal("1h"), true},
		{"backup_interval", cty.StringVal("1h30m"), true},
		{"backup_interval", cty.StringVal("hourly"), false},
		{"sentinel_down_after_ms", cty.NumberIntVal(5000), true},
		{"sentinel_down_after_ms", cty.NumberIntVal(5), false},
		{"redis_min_replicas_max_lag", cty.NumberIntVal(0), false},
		{"haproxy_stats_user", cty.StringVal("admin"), true},
		{"haproxy_stats_user", cty.StringVal(`ad"min`), false},
		{"prometheus_retention", cty.StringVal("15d"), true},
		{"prometheus_retention", cty.StringVal("15 days"), false},
		{"image_tag", cty.StringVal("9c82dae-dirty"), true},
		{"image_tag", cty.StringVal("a b"), false},
	}
	for _, tc := range cases {
		ok, err := m.Validate(tc.variable, tc.value)
		if err != nil {
			t.Errorf("%s: %v", tc.variable, err)
			continue
		}
		if ok != tc.valid {
			t.Errorf("%s = %s: valid %v, want %v", tc.variable, tc.value.GoString(), ok, tc.valid)
		}
	}
}
