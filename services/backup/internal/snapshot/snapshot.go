// Package snapshot takes verified RDB snapshots of the queue from a Redis
// replica found through Sentinel, and checks snapshot files later.
package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// Prefix and Ext name snapshot files: Prefix + UTC time + Ext.
const (
	Prefix     = "sluice-"
	Ext        = ".rdb"
	timeLayout = "20060102T150405.000Z"
	tmpPrefix  = ".tmp-"
)

// Options configures a Snapshotter.
type Options struct {
	Dir string // where snapshots go
	Key string // the queue key whose length goes into the metadata
	// Redis is where snapshots come from. Sentinel mode: an online
	// replica of the master. Single-node mode: that server, whatever its
	// role. Set only one of SentinelAddrs and RedisAddr.
	Redis redisconn.Config
	// Attempts bounds the tries per snapshot (default 5); each try looks
	// for a source again, so a failover in between is followed.
	Attempts int
	// Backoff is the pause after a failed try, times the try number (default 1s).
	Backoff time.Duration
	// IdleTimeout fails a transfer that sends nothing for this long
	// (default 60s; the server sends keepalives every second while it forks).
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// Progress, when set, is called after every chunk written to the
	// temporary file with the source address and bytes so far.
	Progress func(source string, written int64)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Meta is the metadata written beside every snapshot as <file>.json.
type Meta struct {
	File            string    `json:"file"`
	CreatedAt       time.Time `json:"created_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	SizeBytes       int64     `json:"size_bytes"`
	SHA256          string    `json:"sha256"`
	Attempts        int       `json:"attempts"`
	// Source is the server the RDB came from; SourceRole is "replica" in
	// Sentinel mode and "configured" in single-node mode.
	Source      string `json:"source"`
	SourceRole  string `json:"source_role"`
	MasterName  string `json:"master_name,omitempty"`
	MasterAddr  string `json:"master_addr,omitempty"`
	MasterRunID string `json:"master_run_id,omitempty"`
	// ReplID and ReplOffset come from the +FULLRESYNC reply: the snapshot
	// holds exactly the writes of that replication history up to that offset.
	ReplID     string `json:"repl_id"`
	ReplOffset int64  `json:"repl_offset"`
	Diskless   bool   `json:"diskless"`
	RDBVersion int    `json:"rdb_version"`
	RedisVer   string `json:"redis_version"`
	Keys       int64  `json:"keys"`
	Checksum   string `json:"crc64"`
	// Key and KeyLength: the queue's element count, parsed from the RDB
	// itself (so it matches the snapshot exactly; LLEN on a live replica
	// would not). KeyLength is 0 when the key does not exist.
	Key       string `json:"key"`
	KeyLength int64  `json:"key_length"`
}

// Snapshotter takes snapshots. Take is safe for concurrent use; calls run
// one at a time.
type Snapshotter struct {
	opts Options
	log  *slog.Logger
	mu   sync.Mutex
}

// New checks opts and returns a Snapshotter.
func New(opts Options) (*Snapshotter, error) {
	if opts.Dir == "" || opts.Key == "" {
		return nil, errors.New("snapshot: Dir and Key are required")
	}
	if opts.Redis.Sentinel() == (opts.Redis.RedisAddr != "") {
		return nil, errors.New("snapshot: set exactly one of SentinelAddrs and RedisAddr")
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create backup dir %s: %w", opts.Dir, err)
	}
	return &Snapshotter{opts: opts, log: log}, nil
}

// Take takes one snapshot, retrying on a new source after a failure, and
// returns its metadata. On error no snapshot file is left behind.
func (s *Snapshotter) Take(ctx context.Context) (*Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for attempt := 1; attempt <= s.opts.Attempts; attempt++ {
		m, err := s.attempt(ctx)
		if err == nil {
			m.Attempts = attempt
			return m, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		s.log.Warn("snapshot attempt failed", "attempt", attempt, "err", err.Error())
		if ctx.Err() != nil || attempt == s.opts.Attempts {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * s.opts.Backoff):
		}
	}
	return nil, fmt.Errorf("snapshot: %w", errors.Join(errs...))
}

func (s *Snapshotter) attempt(ctx context.Context) (_ *Meta, err error) {
	start := s.opts.Now()
	src, err := s.findSource(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(s.opts.Dir, tmpPrefix+"*"+Ext)
	if err != nil {
		return nil, fmt.Errorf("create temp file in %s: %w", s.opts.Dir, err)
	}
	written := []string{tmp.Name()} // removed unless the snapshot completes
	defer func() {
		if err != nil {
			tmp.Close()
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	h := sha256.New()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var progress func(int64)
	if s.opts.Progress != nil {
		progress = func(n int64) { s.opts.Progress(src.Addr, n) }
	}
	s.log.Info("snapshot started", "source", src.Addr, "role", src.Role)
	tr, err := fetchRDB(ctx, src.Addr, s.opts.Redis.RedisUsername, s.opts.Redis.RedisPassword, s.opts.IdleTimeout, io.MultiWriter(bw, h), progress)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// Verify what is on disk, not what went through memory.
	res, err := checkRDB(tmp.Name(), s.opts.Key)
	if err != nil {
		return nil, fmt.Errorf("verify snapshot from %s: %w", src.Addr, err)
	}
	if res.sha256 != sum {
		return nil, fmt.Errorf("verify snapshot from %s: file hashes to %s, stream hashed to %s", src.Addr, res.sha256, sum)
	}
	created := s.opts.Now().UTC()
	name := Prefix + created.Format(timeLayout) + Ext
	final := filepath.Join(s.opts.Dir, name)
	m := &Meta{
		File: name, CreatedAt: created, DurationSeconds: created.Sub(start).Seconds(),
		SizeBytes: res.info.Bytes, SHA256: sum, Source: src.Addr, SourceRole: src.Role,
		MasterName: src.MasterName, MasterAddr: src.MasterAddr, MasterRunID: src.MasterRunID,
		ReplID: tr.ReplID, ReplOffset: tr.Offset, Diskless: tr.Diskless,
		RDBVersion: res.info.Version, RedisVer: res.info.Aux["redis-ver"], Keys: res.info.Keys,
		Checksum: fmt.Sprintf("%016x", res.info.Checksum), Key: s.opts.Key, KeyLength: res.keyLen,
	}
	if off := res.info.Aux["repl-offset"]; off != "" && off != fmt.Sprint(tr.Offset) {
		s.log.Warn("RDB repl-offset differs from FULLRESYNC offset", "rdb", off, "fullresync", tr.Offset)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	// Sidecars first, the snapshot last: a .rdb file only ever exists
	// complete, verified and with its checksum and metadata beside it.
	for _, side := range []struct {
		path string
		data []byte
	}{
		{final + ".json", append(js, '\n')},
		{final + ".sha256", []byte(sum + "  " + name + "\n")},
	} {
		if err := writeAtomic(side.path, side.data); err != nil {
			return nil, err
		}
		written = append(written, side.path)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, fmt.Errorf("rename %s to %s: %w", tmp.Name(), final, err)
	}
	if err := syncDir(s.opts.Dir); err != nil {
		return nil, err
	}
	s.log.Info("snapshot done", "file", name, "bytes", m.SizeBytes, "seconds", m.DurationSeconds,
		"source", m.Source, "repl_offset", m.ReplOffset, "key_length", m.KeyLength)
	return m, nil
}

// writeAtomic writes data to path through a synced temp file and a rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// RemoveTemps deletes temporary files a crashed run left in dir.
func RemoveTemps(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IsSnapshot reports whether a base name is a snapshot file name.
func IsSnapshot(name string) bool {
	return strings.HasPrefix(name, Prefix) && strings.HasSuffix(name, Ext)
}

// TimeOf parses the creation time out of a snapshot file name.
func TimeOf(name string) (time.Time, error) {
	ts := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), Prefix), Ext)
	return time.Parse(timeLayout, ts)
}
