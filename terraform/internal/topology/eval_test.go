package topology

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestEvaluate loads each fixture of testdata/eval and checks the values of
// its outputs, the services its containers lay out (name -> replicas) or the
// error the load returns.
func TestEvaluate(t *testing.T) {
	cases := []struct {
		name     string
		fixture  string
		opts     []Option
		outputs  map[string]string // output -> AsString of its value
		services map[string]int    // nil: not checked
		wantErr  string            // substring; "" for none
	}{
		{name: "variable defaults", fixture: "variables",
			outputs: map[string]string{"name": "sluice", "replicas": "2", "password": "<var.password>"}},
		{name: "variable values", fixture: "variables",
			opts:    []Option{WithVariables(map[string]cty.Value{"name": cty.StringVal("x"), "password": cty.StringVal("secret")})},
			outputs: map[string]string{"name": "x", "replicas": "2", "password": "secret"}},
		{name: "undeclared variable", fixture: "variables",
			opts:    []Option{WithVariables(map[string]cty.Value{"nope": cty.True})},
			wantErr: "override of undeclared variable nope"},
		{name: "locals and resources to a fixed point", fixture: "locals",
			outputs:  map[string]string{"full": "p-p-net", "env": "A=1,B=p-", "id": "p-net"},
			services: map[string]int{}},
		{name: "conditional off: count = 0", fixture: "conditionals",
			outputs:  map[string]string{"url": "", "images": "0"},
			services: map[string]int{}},
		{name: "conditional on", fixture: "conditionals",
			opts:     []Option{WithVariables(map[string]cty.Value{"on": cty.True})},
			outputs:  map[string]string{"url": "http://on/", "images": "1"},
			services: map[string]int{"svc": 2}},
		{name: "functions", fixture: "functions",
			outputs: map[string]string{
				"format":             "a-3",
				"sha256":             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
				"sha256_of_required": "<derived>",
				"file":               `listen = ":9501"`,
				"merge":              `{"a":1,"b":2}`,
				"lookup":             "fallback",
				"toset":              "2",
				"range":              "0,1,2",
				"sensitive":          "S",
				"concat":             "a b c",
			}},
		{name: "unsupported function", fixture: "unsupported-function",
			wantErr: "local.started does not evaluate"},
		{name: "data source", fixture: "data-source",
			wantErr: "local.net does not evaluate"},
		{name: "uncompared argument", fixture: "unknown-argument",
			wantErr: "argument privileged is not compared"},
		{name: "count not known", fixture: "unknown-count",
			wantErr: "docker_container.c: count"},
		{name: "module call: outputs through module.NAME", fixture: "module-call",
			outputs:  map[string]string{"endpoint": "10.0.0.1:8080", "rendered": "listen :8080\nlisten :8081"},
			services: map[string]int{}},
		{name: "module call: argument fails the child's validation", fixture: "module-call",
			opts:    []Option{WithVariables(map[string]cty.Value{"port": cty.NumberIntVal(0)})},
			wantErr: "module.one: variable port: invalid value"},
		{name: "module call: unknown provider alias", fixture: "module-call-bad-alias",
			wantErr: "module.one: no provider configuration docker.nope"},
		{name: "dynamic block without content", fixture: "dynamic-without-content",
			wantErr: "dynamic upload: argument file is not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, top, err := LoadModule(filepath.Join("testdata", "eval", tc.fixture), tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadModule error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadModule: %v", err)
			}
			for name, want := range tc.outputs {
				if got := output(t, m, name); got != want {
					t.Errorf("output %s = %q, want %q", name, got, want)
				}
			}
			if tc.services == nil {
				return
			}
			if len(top) != len(tc.services) {
				t.Errorf("services %q, want %v", top.Names(), tc.services)
			}
			for name, replicas := range tc.services {
				if s := top[name]; s == nil || s.Replicas != replicas {
					t.Errorf("service %s: %+v, want %d replicas", name, s, replicas)
				}
			}
		})
	}
}

// output evaluates output name of m as a string.
func output(t *testing.T, m *Module, name string) string {
	t.Helper()
	b := m.Outputs[name]
	if b == nil {
		t.Fatalf("no output %s", name)
	}
	v, _, err := m.EvalAttr(b.Body, "value")
	if err != nil {
		t.Fatalf("output %s: %v", name, err)
	}
	s, err := AsString(v)
	if err != nil {
		t.Fatalf("output %s: %v", name, err)
	}
	return s
}

// TestDynamicBlocks: a dynamic block is one block per element of its
// for_each, read with its iterator (the label, or iterator = NAME); files
// that content reads through file() are the uploads' sources.
func TestDynamicBlocks(t *testing.T) {
	dir := filepath.Join("testdata", "eval", "dynamic")
	m, top, err := LoadModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := top["svc"]
	if s == nil {
		t.Fatalf("no service svc: %q", top.Names())
	}
	wantFiles := []string{
		filepath.Join(abs, "prometheus.yml") + " -> /etc/x/prometheus.yml",
		filepath.Join(abs, "rules.yml") + " -> /etc/x/rules.yml",
	}
	if !slices.Equal(s.Files, wantFiles) {
		t.Errorf("files %q, want %q", s.Files, wantFiles)
	}
	if want := []string{"127.0.0.1:19501:9501/tcp", "127.0.0.1:19502:9502/tcp"}; !slices.Equal(s.Ports, want) {
		t.Errorf("ports %q, want %q", s.Ports, want)
	}
	spec := m.Specs()[0]
	if len(spec.Uploads) != 2 || spec.Uploads[1].File != "/etc/x/rules.yml" || spec.Uploads[1].Content != "groups: []\n" {
		t.Errorf("uploads %+v", spec.Uploads)
	}
	if len(spec.Ports) != 2 || spec.Ports[0] != (PortSpec{Internal: 9501, External: 19501, IP: "127.0.0.1", Protocol: "tcp"}) {
		t.Errorf("port specs %+v", spec.Ports)
	}
}

// TestModuleCalls: a module call is loaded with its arguments, on the host of
// the provider alias it passes; the child's host-network containers and
// their capabilities are evaluated.
func TestModuleCalls(t *testing.T) {
	m, _, err := LoadModule(filepath.Join("testdata", "eval", "module-call"))
	if err != nil {
		t.Fatal(err)
	}
	calls := m.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.Name != "one" || c.Provider != "docker.a" || c.DockerHost != "ssh://root@10.0.0.1" || !slices.Equal(c.Args, []string{"caps", "port"}) {
		t.Errorf("call %s provider %s host %q args %q", c.Name, c.Provider, c.DockerHost, c.Args)
	}
	if len(c.Specs) != 1 {
		t.Fatalf("%d specs, want 1", len(c.Specs))
	}
	spec, svc := c.Specs[0], c.Topology["svc"]
	if spec.NetworkMode != "host" || spec.Network != "" || !slices.Equal(spec.CapAdd, []string{"NET_ADMIN"}) {
		t.Errorf("spec network mode %q network %q caps %q", spec.NetworkMode, spec.Network, spec.CapAdd)
	}
	if svc == nil || svc.Network != "host" || !slices.Equal(svc.Caps, []string{"NET_ADMIN"}) || len(svc.Files) != 1 {
		t.Errorf("service %+v", svc)
	}
	if len(spec.Uploads) != 1 || spec.Uploads[0].Content != "listen :8080\n" {
		t.Errorf("uploads %+v", spec.Uploads)
	}
}
