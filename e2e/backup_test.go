//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"
)

// backupMeta is the part of a snapshot's .json metadata the drill reads
// (services/backup/internal/snapshot.Meta).
type backupMeta struct {
	File       string  `json:"file"`
	SizeBytes  int64   `json:"size_bytes"`
	Source     string  `json:"source"`
	SourceRole string  `json:"source_role"`
	ReplID     string  `json:"repl_id"`
	ReplOffset int64   `json:"repl_offset"`
	KeyLength  int64   `json:"key_length"`
	DurationS  float64 `json:"duration_seconds"`
}

// TestBackupRestoreDrill is the disaster drill of BACKUP.md: ack 50k messages
// through HAProxy, take a backup from a replica, destroy every Redis
// container with its data, recreate them empty, restore, and check that
// every acknowledged message is back on the master and both replicas, that
// the Sentinels agree, and that ingest acknowledges new messages.
func TestBackupRestoreDrill(t *testing.T) {
	s := StartStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	startBackup(ctx, t, s)

	const workers, perWorker = 4, 12500
	prefix := fmt.Sprintf("drill%d", time.Now().UnixNano()%1e9)
	t0 := time.Now()
	acked, err := sendAcked(ctx, s, prefix, workers, perWorker, 100)
	if err != nil {
		t.Fatalf("send through HAProxy: %v (%d acked)", err, len(acked))
	}
	t.Logf("drill: %d messages acked through HAProxy in %s", len(acked), time.Since(t0).Round(time.Millisecond))

	// The backup, taken while a paced stream of messages is being acked:
	// every message acked before the backup starts must be in it (the
	// recovery point), whatever is acked during it may or may not be.
	live := make([]string, 4000)
	for i := range live {
		live[i] = MessageID(prefix+"live", 0, i, 100)
	}
	var liveTimes []time.Time
	liveDone := make(chan error, 1)
	go func() {
		addr, err := s.HAProxy.Addr(ctx)
		if err == nil {
			liveTimes, err = sendConn(ctx, addr, live, time.Millisecond)
		}
		liveDone <- err
	}()
	time.Sleep(time.Second)
	t0 = time.Now()
	backupStart := t0
	out, err := s.Node("backup").Exec(ctx, "/backup", "now")
	if err != nil {
		t.Fatalf("backup now: %v", err)
	}
	backupTook := time.Since(t0)
	if err := <-liveDone; err != nil {
		t.Fatalf("live stream: %v (%d acked)", err, len(liveTimes))
	}
	var liveBefore []string
	for i, at := range liveTimes {
		if at.Before(backupStart) {
			liveBefore = append(liveBefore, live[i])
		}
	}
	t.Logf("drill: %d of %d live messages acked before the backup started, %d during or after it",
		len(liveBefore), len(live), len(liveTimes)-len(liveBefore))
	if len(liveBefore) == 0 || len(liveBefore) == len(live) {
		t.Fatalf("the live stream did not overlap the backup (%d of %d acked before it)", len(liveBefore), len(live))
	}
	acked = append(acked, liveBefore...)
	file := strings.Fields(out)[0]
	meta := readBackupMeta(ctx, t, s, file)
	t.Logf("drill: backup %s in %s: %d bytes, %d elements, from %s (%s), replication %s offset %d",
		file, backupTook.Round(time.Millisecond), meta.SizeBytes, meta.KeyLength, meta.Source, meta.SourceRole, meta.ReplID, meta.ReplOffset)
	if meta.SourceRole != "replica" || strings.HasPrefix(meta.Source, "redis-1:") {
		t.Fatalf("backup taken from %s (%s), want a replica (redis-1 is the master)", meta.Source, meta.SourceRole)
	}
	if meta.KeyLength < int64(len(acked)) || meta.KeyLength > int64(len(acked)+len(live)) {
		t.Fatalf("backup holds %d elements; %d were acked before it started, %d more sent", meta.KeyLength, len(acked), len(live)-len(liveBefore))
	}
	if out, err := s.Node("backup").Exec(ctx, "/backup", "verify", "/backups/"+file); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	// A damaged copy (one flipped byte, original sidecars) must be refused.
	plantDamagedCopy(ctx, t, s, file, "damaged.rdb")
	if out, err := s.Node("backup").Exec(ctx, "/backup", "verify", "/backups/damaged.rdb"); err == nil || !strings.Contains(out, "BAD") {
		t.Fatalf("verify of a damaged copy: err=%v\n%s", err, out)
	}

	// The disaster: every Redis container goes, with its volumes.
	t0 = time.Now()
	for _, name := range RedisNames() {
		destroyWithVolumes(ctx, t, s, name)
	}
	t.Logf("drill: redis-1..3 and their volumes destroyed in %s", time.Since(t0).Round(time.Millisecond))

	// Recreate the data tier from the same images and config, empty.
	t0 = time.Now()
	var g errgroup.Group
	for _, name := range RedisNames() {
		g.Go(func() error { return s.Redis.StartNode(ctx, name) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("recreate redis: %v", err)
	}
	if err := s.Redis.WaitConverged(ctx); err != nil {
		t.Fatalf("recreated topology does not converge: %v", err)
	}
	master, err := s.Redis.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Redis.Client(master).LLen(ctx, QueueKey).Result(); err != nil || n != 0 {
		t.Fatalf("recreated master %s holds %d elements (%v); the data was not destroyed", master, n, err)
	}
	t.Logf("drill: topology recreated empty in %s, master %s", time.Since(t0).Round(time.Millisecond), master)

	// A damaged file is refused even with -confirm, and changes nothing.
	if out, err := restoreAsAdmin(ctx, s, "/backup", "restore", "-confirm", "/backups/damaged.rdb"); err == nil || !strings.Contains(out, "refusing") {
		t.Fatalf("restore of a damaged copy: err=%v\n%s", err, out)
	}
	if n, _ := s.Redis.Client(master).LLen(ctx, QueueKey).Result(); n != 0 {
		t.Fatalf("refused restore wrote %d elements", n)
	}

	// Without confirmation the restore refuses and changes nothing.
	out, err = restoreAsAdmin(ctx, s, "/backup", "restore", file)
	if err == nil || !strings.Contains(out, "WILL OVERWRITE") {
		t.Fatalf("restore without -confirm: err=%v\n%s", err, out)
	}
	if n, _ := s.Redis.Client(master).LLen(ctx, QueueKey).Result(); n != 0 {
		t.Fatalf("unconfirmed restore wrote %d elements", n)
	}

	t0 = time.Now()
	out, err = restoreAsAdmin(ctx, s, "/backup", "restore", "-confirm", file)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("drill: restore in %s:\n%s", time.Since(t0).Round(time.Millisecond), out)

	master, list, replicas, err := s.Redis.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkHolds(t, master, list, acked)
	if int64(len(list)) != meta.KeyLength {
		t.Errorf("master %s holds %d elements after the restore, the backup %d", master, len(list), meta.KeyLength)
	}
	if len(replicas) != 2 {
		t.Errorf("%d replicas after the restore, want 2", len(replicas))
	}
	for name, l := range replicas {
		checkHolds(t, name, l, acked)
		if len(l) != len(list) {
			t.Errorf("replica %s holds %d elements, master %d", name, len(l), len(list))
		}
	}
	for _, sn := range SentinelNames() {
		got, err := s.Redis.sentinelMaster(ctx, sn)
		if err != nil || got != master {
			t.Errorf("sentinel %s names %q as master (%v), want %s", sn, got, err, master)
		}
	}

	// Ingest resumes: new messages are acked and land after the restored ones.
	if err := s.HAProxy.WaitUp(ctx, s.Config().IngestReplicas); err != nil {
		t.Fatalf("haproxy after the restore: %v", err)
	}
	after, err := sendAcked(ctx, s, prefix+"after", 2, 500, 100)
	if err != nil {
		t.Fatalf("send after the restore: %v (%d acked)", err, len(after))
	}
	master, list, _, err = s.Redis.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkHolds(t, master, list, append(acked, after...))
	t.Logf("drill: ingest resumed: %d new messages acked; master %s holds %d", len(after), master, len(list))
}

// startBackup runs the backup service (the sluice/backup image) on the stack's
// network, configured like compose.yaml.
func startBackup(ctx context.Context, t *testing.T, s *Stack) {
	t.Helper()
	if _, err := s.Containers.Client().ImageInspect(ctx, s.Containers.Image("backup")); err != nil {
		t.Fatalf("e2e: image %s not found: run `make images`", s.Containers.Image("backup"))
	}
	_, err := s.Containers.run(ctx, containerSpec{
		name:  "backup",
		image: s.Containers.Image("backup"),
		env: map[string]string{
			"BACKUP_SENTINEL_ADDRS":    "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
			"BACKUP_SENTINEL_MASTER":   SentinelMaster,
			"BACKUP_REDIS_USERNAME":    "backup",
			"BACKUP_REDIS_PASSWORD":    s.RedisPassword,
			"BACKUP_SENTINEL_PASSWORD": s.RedisPassword,
			"BACKUP_DIR":               "/backups",
			"BACKUP_INTERVAL":          "1h",
		},
		ports: []string{"8087/tcp"},
	})
	if err != nil {
		t.Fatalf("start backup: %v", err)
	}
	if err := retry(ctx, 200*time.Millisecond, func() error {
		_, err := s.Node("backup").Exec(ctx, "/backup", "healthcheck")
		return err
	}); err != nil {
		t.Fatalf("backup not ready: %v\n%s", err, s.Node("backup").Logs(ctx))
	}
}

func readBackupMeta(ctx context.Context, t *testing.T, s *Stack, file string) backupMeta {
	t.Helper()
	rc, err := s.Node("backup").Container().CopyFileFromContainer(ctx, "/backups/"+file+".json")
	if err != nil {
		t.Fatalf("copy metadata of %s: %v", file, err)
	}
	defer rc.Close()
	var m backupMeta
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		t.Fatalf("decode metadata of %s: %v", file, err)
	}
	return m
}

// plantDamagedCopy copies snapshot file out of the backup container, flips
// one byte in its middle and puts it back as name, with the original's
// sidecars.
func plantDamagedCopy(ctx context.Context, t *testing.T, s *Stack, file, name string) {
	t.Helper()
	c := s.Node("backup").Container()
	for _, ext := range []string{"", ".sha256", ".json"} {
		rc, err := c.CopyFileFromContainer(ctx, "/backups/"+file+ext)
		if err != nil {
			t.Fatalf("copy %s%s out: %v", file, ext, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s%s: %v", file, ext, err)
		}
		if ext == "" {
			b[len(b)/2] ^= 0x01
		}
		if err := c.CopyToContainer(ctx, b, "/backups/"+name+ext, 0o644); err != nil {
			t.Fatalf("copy %s%s in: %v", name, ext, err)
		}
	}
}

// destroyWithVolumes removes a container and every volume it mounts, then
// checks that both are gone.
func destroyWithVolumes(ctx context.Context, t *testing.T, s *Stack, name string) {
	t.Helper()
	id := s.Node(name).ID()
	res, err := s.Containers.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	var volumes []string
	for _, m := range res.Container.Mounts {
		if m.Type == "volume" {
			volumes = append(volumes, m.Name)
		}
	}
	// Terminate removes the container and its anonymous volumes; named ones
	// are removed below.
	if err := s.Node(name).Container().Terminate(ctx); err != nil {
		t.Fatalf("remove %s: %v", name, err)
	}
	for _, v := range volumes {
		if _, err := s.Containers.Client().VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such volume") {
			t.Fatalf("remove volume %s of %s: %v", v, name, err)
		}
		if _, err := s.Containers.Client().VolumeInspect(ctx, v, client.VolumeInspectOptions{}); err == nil {
			t.Fatalf("volume %s of %s still exists", v, name)
		}
	}
	if _, err := s.Containers.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil {
		t.Fatalf("container %s still exists", name)
	}
	t.Logf("drill: %s removed (container %.12s, %d volumes)", name, id, len(volumes))
}

// checkHolds fails the test unless list contains every message of want.
func checkHolds(t *testing.T, node string, list, want []string) {
	t.Helper()
	have := make(map[string]bool, len(list))
	for _, e := range list {
		have[e] = true
	}
	var missing []string
	for _, id := range want {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s lacks %d of %d acked messages, e.g. %q", node, len(missing), len(want), short(missing[0]))
	}
}

// sendAcked sends perConn messages of size bytes on each of conns
// connections through HAProxy and returns the IDs that were acked. Anything
// short of every message acked within 3 minutes is an error.
func sendAcked(ctx context.Context, s *Stack, prefix string, conns, perConn, size int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	results := make([][]string, conns)
	var g errgroup.Group
	for w := range conns {
		g.Go(func() error {
			ids := make([]string, perConn)
			for i := range ids {
				ids[i] = MessageID(prefix, w, i, size)
			}
			addr, err := s.HAProxy.Addr(ctx)
			if err != nil {
				return fmt.Errorf("connection %d: %w", w, err)
			}
			times, err := sendConn(ctx, addr, ids, 0)
			results[w] = ids[:len(times)]
			if err != nil {
				return fmt.Errorf("connection %d: %d of %d acked: %w", w, len(times), perConn, err)
			}
			return nil
		})
	}
	err := g.Wait()
	var acked []string
	for _, r := range results {
		acked = append(acked, r...)
	}
	return acked, err
}

// sendConn writes ids on one connection, one every pace (0: as fast as
// possible), and reads cumulative acks ("OK n") until all are acked. It
// returns the time each acked message was acked.
func sendConn(ctx context.Context, addr string, ids []string, pace time.Duration) ([]time.Time, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		bw := bufio.NewWriterSize(conn, 64<<10)
		for _, id := range ids {
			if _, err := bw.WriteString(id + "\n"); err != nil {
				return
			}
			if pace > 0 {
				if bw.Flush() != nil {
					return
				}
				time.Sleep(pace)
			}
		}
		_ = bw.Flush()
	}()
	br := bufio.NewReader(conn)
	times := make([]time.Time, 0, len(ids))
	for len(times) < len(ids) {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return times, fmt.Errorf("connection ended: %w", errors.Join(err, ctx.Err()))
			}
			return times, err
		}
		now := time.Now()
		n, code, err := parseReply(line)
		if err != nil {
			return times, err
		}
		if n < len(times) || n > len(ids) {
			return times, fmt.Errorf("ack count %d after %d, %d sent", n, len(times), len(ids))
		}
		for len(times) < n {
			times = append(times, now)
		}
		if code != "" {
			return times, fmt.Errorf("server error %s: %s", code, strings.TrimSpace(line))
		}
	}
	return times, nil
}

// restoreAsAdmin runs a command in the backup container as the Redis admin
// user, as `make restore` does: the container itself runs as the backup
// user, which may not write.
func restoreAsAdmin(ctx context.Context, s *Stack, cmd ...string) (string, error) {
	args := append([]string{"exec", "-e", "BACKUP_REDIS_USERNAME=admin", "-e", "BACKUP_REDIS_PASSWORD=" + s.RedisPassword, s.Containers.ContainerName("backup")}, cmd...)
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker exec %q: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
