package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/internal/redistest"
	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
)

// TestCopyTo copies a snapshot to a second destination. A good copy lands
// with its sidecars and verifies; a copy that does not verify (the source
// file was damaged after it was taken) must fail, leave no .rdb, no
// sidecar and no temp file behind, and must not replace a good copy
// already there.
func TestCopyTo(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{Password: password, ExtraConfig: []string{"repl-diskless-sync-delay 0"}})
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: password})
	defer c.Close()
	ctx := context.Background()
	for i := range 2000 {
		if err := c.RPush(ctx, testKey, message(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	s, err := New(Options{Dir: src, Key: testKey, Redis: redisconn.Config{RedisAddr: r.Addr, RedisPassword: password}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(src, m.File))
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), good...)
	damaged[len(damaged)/2] ^= 1

	tests := []struct {
		name     string
		existing bool   // a good copy is already in the destination
		source   []byte // the source .rdb at copy time
		wantErr  error
	}{
		{name: "good copy", source: good},
		{name: "damaged source", source: damaged, wantErr: ErrMismatch},
		{name: "damaged source, good copy already there", existing: true, source: damaged, wantErr: ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "second")
			if tc.existing {
				if err := CopyTo(src, dst, m.File); err != nil {
					t.Fatalf("first copy: %v", err)
				}
			}
			if err := os.WriteFile(filepath.Join(src, m.File), tc.source, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(filepath.Join(src, m.File), good, 0o644) })

			err := CopyTo(src, dst, m.File)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CopyTo: %v, want %v", err, tc.wantErr)
			}
			files := dirFiles(t, dst)
			switch {
			case tc.wantErr == nil || tc.existing:
				if len(files) != 3 {
					t.Fatalf("destination holds %v, want %s and its two sidecars", files, m.File)
				}
				b, err := os.ReadFile(filepath.Join(dst, m.File))
				if err != nil || !bytes.Equal(b, good) {
					t.Fatalf("destination %s is not the good snapshot (%v)", m.File, err)
				}
				if _, err := Verify(filepath.Join(dst, m.File), rdb.Options{}); err != nil {
					t.Fatalf("Verify the copy: %v", err)
				}
			default:
				if len(files) != 0 {
					t.Fatalf("a failed copy left %v in the destination, want nothing", files)
				}
			}
		})
	}
}
