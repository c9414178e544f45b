// Package buildinfo reports what a sluice binary was built from: the main
// module's version, the VCS revision and the Go version, as the Go linker
// stamped them (runtime/debug.ReadBuildInfo). Every binary prints it for
// -version, and the services export it as the sluice_build_info gauge:
//
//	if *showVersion {
//		fmt.Fprintln(stdout, "backup", buildinfo.Read())
//		return nil
//	}
//	...
//	if err := buildinfo.Register(reg); err != nil { ... }
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Unknown stands for a field the build did not stamp (go test, go run
// outside a VCS checkout, -buildvcs=false).
const Unknown = "unknown"

// Set by the linker where the go command stamps no VCS data (-buildvcs=false,
// a source tarball); the Makefile does:
//
//	go build -ldflags "-X github.com/sluice-ingest/sluice/internal/buildinfo.version=$(TAG)
//	                   -X github.com/sluice-ingest/sluice/internal/buildinfo.revision=$(git rev-parse HEAD)"
var version, revision string

// Info is what a binary was built from.
type Info struct {
	// Version is the version given to the linker (the Makefile's TAG, git
	// describe: v1.2.0, a8a748a-dirty), else the main module's version the
	// go command stamped (v1.2.0, v0.0.0-20261202065000-a8a748a1b2c3+dirty),
	// else Unknown.
	Version string
	// Revision is the VCS commit (full hash) the go command stamped, else the
	// one given to the linker, else Unknown.
	Revision string
	// Modified is true when the working tree had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string
}

// Read returns the build information of the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuildInfo(bi, version, revision)
}

// Version is Read().Version.
func Version() string { return Read().Version }

func fromBuildInfo(bi *debug.BuildInfo, linkedVersion, linkedRevision string) Info {
	i := Info{Version: Unknown, Revision: Unknown, GoVersion: runtime.Version()}
	if linkedVersion != "" {
		i.Version = linkedVersion
	}
	if linkedRevision != "" {
		i.Revision = linkedRevision
	}
	if bi == nil {
		return i
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" && linkedVersion == "" {
		i.Version = v
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				i.Revision = s.Value
			}
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the -version line after the binary's name:
// "v0.0.0-20261202065000-a8a748a1b2c3+dirty (revision a8a748a1b2c3..., modified, go1.26.8)".
func (i Info) String() string {
	modified := ""
	if i.Modified {
		modified = ", modified"
	}
	return fmt.Sprintf("%s (revision %s%s, %s)", i.Version, i.Revision, modified, i.GoVersion)
}

// Collector is the gauge sluice_build_info{version,revision,goversion},
// always 1, labelled with i.
func (i Info) Collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sluice_build_info",
		Help:        "Always 1; the labels say what the binary was built from (version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}

// Register registers the sluice_build_info gauge of the running binary on
// reg. It fails only if reg already has a sluice_build_info.
func Register(reg prometheus.Registerer) error {
	if err := reg.Register(Read().Collector()); err != nil {
		return fmt.Errorf("register sluice_build_info: %w", err)
	}
	return nil
}
