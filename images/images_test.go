package images_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every Dockerfile builds with the classic builder (Docker 20.10 without
// BuildKit): no heredocs, no RUN --mount, no COPY/ADD --chmod or --link.
func TestDockerfilesClassicBuilder(t *testing.T) {
	files, err := filepath.Glob("*/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../services/*/Dockerfile")
	files = append(files, more...)
	if len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	banned := regexp.MustCompile(`(?m)(<<-?\s*["']?[A-Z]+|--mount=|--chmod=|--link\b|^# syntax=)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := banned.Find(b); m != nil {
			t.Errorf("%s uses %q, which the classic builder rejects", f, m)
		}
	}
}

// Both base image paths install exactly images/base-packages.txt: the
// debootstrap path passes it to --include, the registry path to the
// Dockerfile's PACKAGES.
func TestBasePathsSharePackages(t *testing.T) {
	script, err := os.ReadFile("build-base.sh")
	if err != nil {
		t.Fatal(err)
	}
	s := string(script)
	for _, want := range []string{`"$here/base-packages.txt"`, `--include="$packages"`, `--build-arg PACKAGES="${packages//,/ }"`, `"$here/base"`} {
		if !strings.Contains(s, want) {
			t.Errorf("build-base.sh lacks %s", want)
		}
	}
	df, err := os.ReadFile("base/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`apt-get[^\n]* install [^\n]*\$PACKAGES`).Match(df) {
		t.Error("base/Dockerfile does not install $PACKAGES")
	}
}
