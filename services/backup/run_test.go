package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/config"

	"github.com/sluice-ingest/sluice/internal/clitest"
)

// TestServiceCommands runs the service against a real Sentinel topology and
// drives it through its subcommands: healthcheck, now, list, verify and an
// unconfirmed restore.
func TestServiceCommands(t *testing.T) {
	const pw = "svc-secret"
	top := redistest.NewTopology(t, redistest.TopologyOptions{Replicas: 2, Password: pw,
		RedisConfig: []string{"repl-diskless-sync-delay 0"}})
	mc := redis.NewClient(&redis.Options{Addr: top.Redis[0].Addr, Password: pw})
	defer mc.Close()
	if err := mc.RPush(context.Background(), "data_queue", "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := map[string]string{
		"BACKUP_SENTINEL_ADDRS": strings.Join(top.SentinelAddrs(), ","),
		"BACKUP_REDIS_PASSWORD": pw,
		"BACKUP_DIR":            dir,
		"BACKUP_ADMIN_ADDR":     "127.0.0.1:0",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addrc := make(chan net.Addr, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(a net.Addr) { addrc <- a })
	}()
	var adminAddr net.Addr
	select {
	case adminAddr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	}()
	env["BACKUP_ADMIN_ADDR"] = adminAddr.String()
	getenv := func(k string) string { return env[k] }
	cmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	if out, err := cmd("healthcheck"); err != nil || !strings.Contains(out, "ready") {
		t.Fatalf("healthcheck: %v\n%s", err, out)
	}
	out, err := cmd("now")
	if err != nil {
		t.Fatalf("now: %v\n%s", err, out)
	}
	t.Logf("now: %s", out)
	if !strings.Contains(out, "data_queue=3 elements") {
		t.Fatalf("now output lacks the queue length: %s", out)
	}
	file := strings.Fields(out)[0]
	if out, err := cmd("list"); err != nil || !strings.Contains(out, file) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := cmd("verify", filepath.Join(dir, file)); err != nil || !strings.Contains(out, "\tOK\t") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	out, err = cmd("restore", file)
	if err == nil || !strings.Contains(err.Error(), "-confirm") || !strings.Contains(out, "WILL OVERWRITE") {
		t.Fatalf("unconfirmed restore: err=%v\n%s", err, out)
	}
	resp, err := http.Get("http://" + adminAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"\nsluice_backup_last_success_timestamp_seconds ", "\nsluice_backup_last_duration_seconds ",
		"\nsluice_backup_last_size_bytes ", "\nsluice_backup_last_key_length 3\n", "\nsluice_backup_snapshots_total ",
		"\nsluice_backup_failures_total 0\n", "\nsluice_backup_copy_failures_total 0\n", "\nsluice_backup_retention_removed_total 0\n",
		"\nsluice_build_info{goversion="} {
		if !bytes.Contains(body, []byte(m)) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	// a damaged snapshot: verify exits non-zero and says BAD
	p := filepath.Join(dir, file)
	b, _ := os.ReadFile(p)
	b[len(b)-10] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("verify", p); err == nil || !strings.Contains(out, "\tBAD\t") {
		t.Fatalf("verify of a damaged file: err=%v\n%s", err, out)
	}
}

// TestCommandLine runs main's path (run, then cli.Exit) for the command
// lines that end before any Redis is needed.
func TestCommandLine(t *testing.T) {
	clitest.Run(t, "backup", run, []clitest.Case{
		{Name: "help", Args: []string{"-h"}, WantStdout: []string{"Usage:", "backup verify FILE", "BACKUP_SENTINEL_ADDRS"}},
		{Name: "help of a subcommand", Args: []string{"restore", "-h"}, WantStdout: []string{"Usage:", "BACKUP_SENTINEL_ADDRS"}},
		{Name: "version", Args: []string{"-version"}, WantStdout: []string{"backup ", "(revision ", "go1."}},
		{Name: "unknown flag", Args: []string{"-bogus"}, WantCode: 2,
			WantStderr: []string{"Usage:", "\nbackup: flag provided but not defined: -bogus\n"}},
		{Name: "unknown command", Args: []string{"snapshot"}, WantCode: 2,
			WantStderr: []string{"Usage:", `backup: unknown command "snapshot"`}},
		{Name: "unknown flag of a subcommand", Args: []string{"now", "-remote"}, WantCode: 2,
			WantStderr: []string{"Usage:", "backup: now: flag provided but not defined: -remote\n"}},
		{Name: "verify without files", Args: []string{"verify"}, WantCode: 2,
			WantStderr: []string{"Usage:", "backup: verify: name at least one FILE"}},
		{Name: "restore without a file", Args: []string{"restore", "-confirm"}, WantCode: 2,
			WantStderr: []string{"Usage:", "backup: restore: name exactly one FILE, not 0"}},
		{Name: "configuration: parse and validation errors together", Env: map[string]string{
			"BACKUP_INTERVAL": "soon", "BACKUP_KEEP_LAST": "0"}, WantCode: 1,
			WantStderr: []string{"backup: configuration:\n", "BACKUP_INTERVAL: not a valid time.Duration",
				"BACKUP_SENTINEL_ADDRS: set it", "BACKUP_KEEP_LAST: 0 must be at least 1"}},
		{Name: "configuration of now -local", Args: []string{"now", "-local"}, Env: map[string]string{"BACKUP_ATTEMPTS": "x"}, WantCode: 1,
			WantStderr: []string{"backup: configuration:\n", "BACKUP_ATTEMPTS: not a valid int", "BACKUP_SENTINEL_ADDRS: set it"}},
	})
}

// TestVerifyWithoutSidecars: verify checks a plain RDB file (a dump.rdb
// has no .sha256 or .json) as far as it can, and says what it did not check.
func TestVerifyWithoutSidecars(t *testing.T) {
	rdbFile, err := os.ReadFile("internal/rdb/testdata/types-7.0.rdb")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(rdbFile)
	goodSum := hex.EncodeToString(sum[:]) + "  dump.rdb\n"
	meta := func(keyLen, size int) string {
		return fmt.Sprintf(`{"key":"data_queue","key_length":%d,"size_bytes":%d,"sha256":%q,"repl_offset":42}`, keyLen, size, hex.EncodeToString(sum[:]))
	}
	tests := []struct {
		name     string
		files    map[string]string // beside dump.rdb (written from types-7.0.rdb unless truncated)
		truncate bool
		want     []string // on the file's line
		wantBad  bool
	}{
		{name: "plain RDB", want: []string{"\tOK\tRDB v10, 15 keys, crc64 146a9c3c795c4621, data_queue=3000 elements; not checked: sha256 (no .sha256 file), size, sha256 and data_queue length against metadata (no .json file)\n"}},
		{name: "checksum file only", files: map[string]string{".sha256": goodSum},
			want: []string{"\tOK\t", "not checked: size, sha256 and data_queue length against metadata (no .json file)\n"}},
		{name: "metadata only", files: map[string]string{".json": meta(3000, len(rdbFile))},
			want: []string{"\tOK\t", "repl offset 42; not checked: sha256 (no .sha256 file)\n"}},
		{name: "both sidecars: nothing left unchecked", files: map[string]string{".sha256": goodSum, ".json": meta(3000, len(rdbFile))},
			want: []string{"\tOK\tRDB v10, 15 keys, crc64 146a9c3c795c4621, data_queue=3000 elements, repl offset 42\n"}},
		{name: "wrong checksum file", files: map[string]string{".sha256": strings.Repeat("0", 64) + "  dump.rdb\n"}, wantBad: true,
			want: []string{"\tBAD\t", ".sha256 says 0000"}},
		{name: "metadata disagrees", files: map[string]string{".json": meta(7, len(rdbFile))}, wantBad: true,
			want: []string{"\tBAD\t", "data_queue has 3000 elements, metadata says 7"}},
		{name: "unreadable metadata", files: map[string]string{".json": "{"}, wantBad: true,
			want: []string{"\tBAD\t", "decode "}},
		{name: "truncated plain RDB", truncate: true, wantBad: true, want: []string{"\tBAD\t", "corrupt RDB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "dump.rdb")
			content := rdbFile
			if tc.truncate {
				content = content[:len(content)/2]
			}
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
			for ext, body := range tc.files {
				if err := os.WriteFile(p+ext, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"verify", p}, func(string) string { return "" }, &stdout, &stderr)
			if tc.wantBad != (err != nil) {
				t.Errorf("verify = %v, want an error: %v", err, tc.wantBad)
			}
			if err != nil && err.Error() != "verify: 1 of 1 files BAD" {
				t.Errorf("error %q repeats more than the count", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}
