//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// requireEnv fails fast when the environment would make testcontainers pull
// the Ryuk image (no registry is reachable) or map ports oddly.
func requireEnv(t testing.TB) {
	t.Helper()
	if err := checkEnv(); err != nil {
		t.Fatal(err)
	}
}

func checkEnv() error {
	var errs []error
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		errs = append(errs, errors.New("TESTCONTAINERS_RYUK_DISABLED must be exactly \"true\" (Ryuk needs an image pull; the harness cleans up itself)"))
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		errs = append(errs, errors.New("TESTCONTAINERS_HOST_OVERRIDE must be set, e.g. 127.0.0.1 (ports are published on loopback)"))
	}
	return errors.Join(errs...)
}

// imageTag is SLUICE_TAG, the tag `make images` gave the images.
func imageTag() (string, error) {
	if tag := os.Getenv("SLUICE_TAG"); tag != "" {
		return tag, nil
	}
	return "", errors.New("e2e: SLUICE_TAG is not set: run `make images` and then `make test-e2e` " +
		"(or export SLUICE_TAG=$(git describe --always --dirty) after `make images`)")
}

// repoRoot finds the directory holding go.mod, upwards from the test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("e2e: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// httpGet does a GET (with basic auth when user is set) and returns the status and body.
func httpGet(ctx context.Context, url, user, password string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, string(body), fmt.Errorf("get %s: %w", url, err)
	}
	return resp.StatusCode, string(body), nil
}

// retry calls f until it succeeds or ctx ends, and returns the last error.
func retry(ctx context.Context, every time.Duration, f func() error) error {
	var last error
	for {
		err := f()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(every):
		}
	}
}
