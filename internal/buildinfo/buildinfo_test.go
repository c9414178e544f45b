package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name           string
		bi             *debug.BuildInfo
		linkedVersion  string // -X ...buildinfo.version
		linkedRevision string
		want           Info
	}{
		{name: "no build info", bi: nil,
			want: Info{Version: Unknown, Revision: Unknown, GoVersion: runtime.Version()}},
		{name: "go test: devel, no vcs", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: Info{Version: Unknown, Revision: Unknown, GoVersion: "go1.26.8"}},
		{name: "go build in a dirty checkout",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202065000-a8a748a1b2c3+dirty"},
				Settings: vcs("-trimpath", "true", "vcs", "git", "vcs.revision", "a8a748a1b2c3d4e5", "vcs.modified", "true")},
			want: Info{Version: "v0.0.0-20261202065000-a8a748a1b2c3+dirty", Revision: "a8a748a1b2c3d4e5", Modified: true, GoVersion: "go1.26.8"}},
		{name: "release tag, clean",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
				Settings: vcs("vcs.revision", "0123456789ab", "vcs.modified", "false")},
			want: Info{Version: "v1.2.0", Revision: "0123456789ab", GoVersion: "go1.26.8"}},
		{name: "-buildvcs=false, make's -X values", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			linkedVersion: "a8a748a-dirty", linkedRevision: "a8a748a1b2c3d4e5",
			want: Info{Version: "a8a748a-dirty", Revision: "a8a748a1b2c3d4e5", GoVersion: "go1.26.8"}},
		{name: "-X version wins, VCS revision wins",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202065000-a8a748a1b2c3"},
				Settings: vcs("vcs.revision", "a8a748a1b2c3d4e5")},
			linkedVersion: "v1.3.0", linkedRevision: "stale",
			want: Info{Version: "v1.3.0", Revision: "a8a748a1b2c3d4e5", GoVersion: "go1.26.8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.linkedVersion, tc.linkedRevision); got != tc.want {
				t.Fatalf("fromBuildInfo = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		info Info
		want string
	}{
		{Info{Version: "v1.2.0", Revision: "0123", GoVersion: "go1.26.8"}, "v1.2.0 (revision 0123, go1.26.8)"},
		{Info{Version: Unknown, Revision: "0123", Modified: true, GoVersion: "go1.26.8"}, "unknown (revision 0123, modified, go1.26.8)"},
	}
	for _, tc := range tests {
		if got := tc.info.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "sluice_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one sluice_build_info", mfs)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	i := Read()
	want := map[string]string{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion}
	if len(labels) != len(want) || m.GetGauge().GetValue() != 1 {
		t.Fatalf("sluice_build_info %v = %v, want %v = 1", labels, m.GetGauge().GetValue(), want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	if err := Register(reg); err == nil || !strings.Contains(err.Error(), "register sluice_build_info") {
		t.Fatalf("second Register = %v, want a duplicate error", err)
	}
}
