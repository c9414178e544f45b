package hostlab

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/terraform/internal/topology"
)

// TestPlan: containers are created in depends_on waves, the same wave on
// every host together; a cycle is an error, a dependency on a resource the
// host does not run is ignored (it is elsewhere or excluded).
func TestPlan(t *testing.T) {
	spec := func(res, name string, deps ...string) *topology.InstanceSpec {
		return &topology.InstanceSpec{Resource: "docker_container." + res, Name: name, DependsOn: deps}
	}
	node := func(d string) []*topology.InstanceSpec {
		return []*topology.InstanceSpec{
			spec("redis", d+"-redis"), spec("sentinel", d+"-sentinel"),
			spec("ingest", d+"-ingest-1", "docker_container.redis", "docker_container.sentinel"),
			spec("ingest", d+"-ingest-2", "docker_container.redis", "docker_container.sentinel"),
			spec("haproxy", d+"-haproxy", "docker_container.ingest"),
		}
	}
	a, b := &Host{Name: "a"}, &Host{Name: "b"}
	cases := []struct {
		name       string
		placements []Placement
		want       []string // per wave: "host:container ..." sorted
		wantErr    string
	}{
		{"two hosts", []Placement{{a, node("a")}, {b, node("b")}}, []string{
			"a:a-redis a:a-sentinel b:b-redis b:b-sentinel",
			"a:a-ingest-1 a:a-ingest-2 b:b-ingest-1 b:b-ingest-2",
			"a:a-haproxy b:b-haproxy",
		}, ""},
		{"dependency elsewhere", []Placement{{a, []*topology.InstanceSpec{spec("haproxy", "h", "docker_container.ingest")}}},
			[]string{"a:h"}, ""},
		{"cycle", []Placement{{a, []*topology.InstanceSpec{spec("x", "x", "docker_container.y"), spec("y", "y", "docker_container.x")}}},
			nil, "host a: depends_on cycle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			waves, err := plan(tc.placements)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range waves {
				var names []string
				for _, s := range w {
					names = append(names, fmt.Sprintf("%s:%s", s.Host.Name, s.Spec.Name))
				}
				slices.Sort(names)
				got = append(got, strings.Join(names, " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("waves\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
