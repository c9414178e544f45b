package terraform_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluice-ingest/sluice/terraform/internal/topology"
	"github.com/zclconf/go-cty/cty"
)

// TestMonitoringMatchesCompose: with monitoring = true the module lays out the same topology
// as compose.yaml plus compose/monitoring.yaml (`make up MONITORING=1`), aspect by aspect;
// with the default (false) it has none of the monitoring containers, which
// TestModuleMatchesCompose checks against compose.yaml alone.
func TestMonitoringMatchesCompose(t *testing.T) {
	composeTop, err := topology.LoadCompose(filepath.Join("..", "compose", "compose.yaml"))
	if err != nil {
		t.Fatalf("load compose: %v", err)
	}
	monTop, err := topology.LoadCompose(filepath.Join("..", "compose", "monitoring.yaml"))
	if err != nil {
		t.Fatalf("load compose monitoring override: %v", err)
	}
	for name, s := range monTop {
		if composeTop[name] != nil {
			t.Fatalf("monitoring.yaml redefines service %s of compose.yaml: the merge is not a union", name)
		}
		composeTop[name] = s
	}
	m, tfTop, err := topology.LoadModule(".", topology.WithVariables(map[string]cty.Value{"monitoring": cty.True}))
	if err != nil {
		t.Fatalf("load terraform module with monitoring = true: %v", err)
	}
	diffs := topology.Compare(composeTop, tfTop)
	for _, aspect := range aspects {
		t.Run(aspect, func(t *testing.T) {
			for _, d := range diffs {
				if d.Aspect == aspect {
					t.Error(d)
				}
			}
		})
	}
	for _, d := range diffs {
		if !slices.Contains(aspects, d.Aspect) {
			t.Errorf("unlisted aspect: %v", d)
		}
	}

	// Both sides are what the Operations issue asks for, so that two equally wrong files
	// do not pass.
	want := []struct {
		name  string
		ports []string
	}{
		{"prometheus", []string{"127.0.0.1:9090:9090/tcp"}},
		{"redis-exporter", nil},
	}
	for _, side := range []struct {
		name string
		top  topology.Topology
	}{{"compose", composeTop}, {"terraform", tfTop}} {
		t.Run("monitoring/"+side.name, func(t *testing.T) {
			if len(side.top) != 11 {
				t.Errorf("%d services %q, want the 9 of the stack and 2 for monitoring", len(side.top), side.top.Names())
			}
			for _, w := range want {
				s := side.top[w.name]
				if s == nil {
					t.Errorf("service %s missing", w.name)
					continue
				}
				if s.Image != "sluice/monitoring" || s.Replicas != 1 || !slices.Equal(s.Ports, w.ports) {
					t.Errorf("service %s: image %s ×%d ports %q, want sluice/monitoring ×1 ports %q", w.name, s.Image, s.Replicas, s.Ports, w.ports)
				}
				if s.Health == "" {
					t.Errorf("service %s has no healthcheck", w.name)
				}
			}
		})
	}

	t.Run("variable", func(t *testing.T) {
		b := m.Variables["monitoring"]
		if b == nil {
			t.Fatal("variable monitoring missing")
		}
		if b.Body.Attributes["description"] == nil {
			t.Error("variable monitoring has no description")
		}
		d, diags := b.Body.Attributes["default"].Expr.Value(nil)
		if diags.HasErrors() || !d.RawEquals(cty.False) {
			t.Errorf("monitoring default %#v, want false", d)
		}
		v, _, err := m.EvalAttr(m.Outputs["prometheus_url"].Body, "value")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := topology.AsString(v); got != "http://127.0.0.1:9090/" {
			t.Errorf("output prometheus_url = %q with monitoring = true, want http://127.0.0.1:9090/", got)
		}
	})

	t.Run("off-by-default", func(t *testing.T) {
		_, off, err := topology.LoadModule(".")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"prometheus", "redis-exporter"} {
			if off[name] != nil {
				t.Errorf("service %s runs with the default monitoring = false", name)
			}
		}
	})
}
