package main

import (
	"bytes"
	"context"
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

func TestConfigErrorsNamed(t *testing.T) {
	err := run(context.Background(), nil, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "BACKUP_SENTINEL_ADDRS") {
		t.Fatalf("run without configuration: %v", err)
	}
}
