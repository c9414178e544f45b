// Package restore loads a verified snapshot back into a running Sentinel
// topology (or a single node) through the master, with ordinary commands
// (batched RPUSH for the queue, RESTORE for small keys), so that the replicas
// receive it through normal replication, AOF stays consistent, no server
// restarts and no Sentinel has anything to do.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ingest/sluice/internal/redisconn"
	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// ErrNotConfirmed is returned when Confirm is false: nothing was changed.
var ErrNotConfirmed = errors.New("restore not confirmed: nothing was changed")

// maxRDBVersion is the newest RDB version a Redis 7.0 RESTORE accepts.
const maxRDBVersion = 10

// Options configures a restore.
type Options struct {
	// Redis is the master to restore on: the one the Sentinels agree on,
	// or the single node. Its user writes: the shipped stack's admin.
	Redis redisconn.Config
	Key   string // the queue key (BACKUP_KEY)
	// Replace discards what the queue holds when the plan is printed:
	// exactly the elements the plan counts, no more. Elements appended
	// after the plan (messages ingest acknowledges during the restore)
	// are kept, after the backup's. Without it the queue becomes the
	// backup's elements followed by all current ones (messages
	// acknowledged after the data loss are kept).
	Replace bool
	Confirm bool
	// Timeout bounds the wait for replicas and Sentinels (default 60s).
	Timeout time.Duration
	Out     io.Writer // the plan and progress, for the operator
}

// Result describes a finished restore.
type Result struct {
	Master      string
	Replicas    []string
	Restored    int64 // elements of the queue taken from the backup
	KeptCurrent int64 // elements that were already in the queue and were kept
	FinalLength int64
	OtherKeys   int // other keys restored
	Skipped     []string
}

type value struct {
	db      int
	key     rdb.Key
	payload []byte // the queue's raw value, decoded element by element
	dump    []byte // RESTORE argument, for the other keys
}

// Run verifies the snapshot at path, prints what will be overwritten, and,
// if confirmed, restores it on the master and checks that every replica and
// every Sentinel agrees.
func Run(ctx context.Context, path string, o Options) (*Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	var values []value
	v, err := snapshot.Verify(path, rdb.Options{
		Capture: func(int, []byte) bool { return true },
		OnKey: func(k rdb.Key) error {
			values = append(values, value{db: k.DB, key: k})
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("refusing to restore: %w", err)
	}
	if v.Info.Version > maxRDBVersion {
		return nil, fmt.Errorf("refusing to restore: RDB version %d is newer than Redis 7.0 reads (%d)", v.Info.Version, maxRDBVersion)
	}
	var queue *value
	for i := range values {
		if values[i].db == 0 && string(values[i].key.Name) == o.Key {
			queue = &values[i]
			queue.payload = queue.key.Payload
		} else {
			values[i].dump = rdb.DumpPayload(values[i].key.Payload, v.Info.Version)
		}
		values[i].key.Payload = nil
	}
	if queue == nil {
		return nil, fmt.Errorf("refusing to restore: %s has no key %q in db 0", path, o.Key)
	}
	switch queue.key.Type {
	case rdb.TypeList, rdb.TypeListZiplist, rdb.TypeListQuicklist, rdb.TypeListQuicklist2:
	default:
		return nil, fmt.Errorf("refusing to restore: %q in %s is of RDB type %d, not a list", o.Key, path, queue.key.Type)
	}
	fmt.Fprintf(o.Out, "backup %s: verified (sha256, CRC-64, %d keys); taken %s from %s, %s replication offset %d, %s has %d elements\n",
		v.Meta.File, v.Info.Keys, v.Meta.CreatedAt.Format(time.RFC3339), v.Meta.Source, v.Meta.ReplID, v.Meta.ReplOffset, o.Key, queue.key.Len)

	master, err := findMaster(ctx, o)
	if err != nil {
		return nil, err
	}
	mc := client(master, o.Redis.RedisUsername, o.Redis.RedisPassword, 0)
	defer mc.Close()
	replicas, err := connectedReplicas(ctx, mc)
	if err != nil {
		return nil, err
	}
	plan, err := planQueue(ctx, mc, o.Key)
	if err != nil {
		return nil, err
	}
	current := plan.n
	fmt.Fprintf(o.Out, "target: master %s, replicas %v (they follow the master)\n", master, replicas)
	if o.Replace {
		fmt.Fprintf(o.Out, "WILL OVERWRITE: %s on %s now holds %d elements; these %d are DISCARDED and replaced by the %d of the backup\n",
			o.Key, master, current, current, queue.key.Len)
		fmt.Fprintf(o.Out, "  (elements appended from now on are kept, after the backup's)\n")
	} else {
		fmt.Fprintf(o.Out, "WILL OVERWRITE: %s becomes the %d elements of the backup followed by the %d it holds now\n",
			o.Key, queue.key.Len, current)
		fmt.Fprintf(o.Out, "  (elements consumed since the backup come back: consumers see them again)\n")
	}
	if len(values) > 1 {
		fmt.Fprintf(o.Out, "also restores %d other keys of the backup where they do not exist yet (existing ones are left alone)\n", len(values)-1)
	}
	if !o.Confirm {
		return nil, ErrNotConfirmed
	}

	res := &Result{Master: master, Replicas: replicas}
	if err := restoreQueue(ctx, mc, o, queue, plan, res); err != nil {
		return nil, err
	}
	for _, val := range values {
		if val.db == 0 && string(val.key.Name) == o.Key {
			continue
		}
		if err := restoreOther(ctx, master, o.Redis.RedisUsername, o.Redis.RedisPassword, val); err != nil {
			if strings.Contains(err.Error(), "BUSYKEY") {
				res.Skipped = append(res.Skipped, fmt.Sprintf("db%d:%s", val.db, val.key.Name))
				continue
			}
			return nil, err
		}
		res.OtherKeys++
	}
	if err := checkReplicas(ctx, mc, o, replicas, res); err != nil {
		return nil, err
	}
	if o.Redis.Sentinel() {
		if err := checkSentinels(ctx, o, master); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(o.Out, "restored: %s holds %d elements (%d from the backup, %d kept) on the master and %d replicas; %d other keys restored, %d skipped\n",
		o.Key, res.FinalLength, res.Restored, res.KeptCurrent, len(replicas), res.OtherKeys, len(res.Skipped))
	return res, nil
}

func client(addr, username, password string, db int) *redis.Client {
	return redisconn.NewNodeClient(addr, username, password, redisconn.Options{
		DB: db, NoIdentity: true,
		DialTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second,
	})
}

// planned is the queue as the plan saw it: its length and its first and
// last elements, read in one transaction.
type planned struct {
	n           int64
	first, last string
}

// planQueue reads the queue's length and its first and last elements
// atomically (MULTI/EXEC): -replace discards exactly these n elements, and
// checks by first and last that they are still the first n (see
// discardScript).
func planQueue(ctx context.Context, mc *redis.Client, key string) (planned, error) {
	var n *redis.IntCmd
	var first, last *redis.StringCmd
	_, err := mc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.LLen(ctx, key)
		first = p.LIndex(ctx, key, 0)
		last = p.LIndex(ctx, key, -1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return planned{}, fmt.Errorf("LLEN %s on master %s: %w", key, mc.Options().Addr, err)
	}
	return planned{n: n.Val(), first: first.Val(), last: last.Val()}, nil
}

// discardScript removes the first ARGV[1] elements of the list KEYS[1] (the
// count of the plan the operator confirmed) and keeps whatever was appended
// after them, atomically. ARGV[2] and ARGV[3] are the first and last of
// those elements as the plan read them: if the list is shorter, or they are
// not at positions 0 and n-1 any more (a consumer took elements from the
// head, or the queue was replaced), the first n elements are not the ones
// the plan counted and it refuses, changing nothing. It returns n. LTRIM
// frees the n elements in this one call: no copy, one free per quicklist
// node (about 100 messages of 100 bytes), and it cannot be split without
// losing the check.
const discardScript = `
local n = tonumber(ARGV[1])
if n == 0 then return 0 end
if redis.call('LLEN', KEYS[1]) < n or redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] or redis.call('LINDEX', KEYS[1], n - 1) ~= ARGV[3] then
  return redis.error_reply('CHANGED ' .. KEYS[1] .. ' no longer starts with the ' .. n .. ' elements the plan counted (consumed or replaced since): nothing discarded')
end
redis.call('LTRIM', KEYS[1], n, -1)
return n
`

// prependScript moves the last elements of the list KEYS[2] (the rebuilt
// backup, in staging) to the head of the list KEYS[1] (the queue), in
// order: at most ARGV[1] elements and about ARGV[2] bytes per call (it
// reads groups of at most 100, the first of 1, each sized by the average
// so far to fit the bytes left; messages may be up to 512 MiB), so that no call blocks the master (and its replicas) for
// long, however long either list is. Called until the staging list is
// empty (it is deleted with its last element), it makes the queue the
// backup's elements followed by what the queue held, including everything
// appended meanwhile. It returns {elements left in staging, queue length}.
//
// The trade-off against the former single script, which copied the whole
// live queue behind the staging list and RENAMEd it in one atomic call:
// the merge is no longer one atomic step. Between calls the queue starts
// with the last part of the backup only, so a consumer popping from the
// head meanwhile gets those restored elements before the earlier ones. What
// matters is kept: the live queue is never moved, so every message ingest
// acknowledged before or during the merge stays in the queue, behind all
// restored elements, and each call's effects replicate as one MULTI/EXEC.
// If the restore stops half-way, the queue holds the backup's last
// elements and every live one, and the staging key the backup's first
// elements; running the restore again restores the whole backup again (the
// prepended part twice: at-least-once, nothing lost).
const prependScript = `
local maxn, maxb = tonumber(ARGV[1]), tonumber(ARGV[2])
local left = redis.call('LLEN', KEYS[2])
local moved, bytes, k = 0, 0, 1
while left > 0 and moved < maxn and bytes < maxb do
  if moved > 0 then
    k = math.max(1, math.min(100, math.floor((maxb - bytes) / math.max(1, bytes / moved))))
  end
  k = math.min(k, left, maxn - moved)
  local chunk = redis.call('LRANGE', KEYS[2], -k, -1)
  -- LPUSH puts each argument at the head in turn: pass the chunk reversed.
  local rev = {}
  for i = #chunk, 1, -1 do
    rev[#rev + 1] = chunk[i]
    bytes = bytes + #chunk[i]
  end
  redis.call('LPUSH', KEYS[1], unpack(rev))
  redis.call('LTRIM', KEYS[2], 0, -k - 1)
  moved = moved + k
  left = left - k
end
return {left, redis.call('LLEN', KEYS[1])}
`

// batchElements and batchBytes bound one RPUSH of the restore; pipeline is
// the RPUSHes in flight. No command blocks the master for long: one RESTORE
// of a 1M-element list would stall it (and its replicas) for longer than
// Sentinel's down-after, and trigger the failover a restore must not cause.
const (
	batchElements = 1000
	batchBytes    = 1 << 20
	pipeline      = 16
)

// restoreQueue rebuilds the queue in a staging key with batched RPUSHes;
// with Replace it then discards the elements the plan counted (and only
// those); then it moves the staging list to the head of the queue in
// bounded script calls (prependScript), keeping what the queue holds.
func restoreQueue(ctx context.Context, mc *redis.Client, o Options, q *value, plan planned, res *Result) error {
	staging := o.Key + ":restore-staging"
	if err := mc.Unlink(ctx, staging).Err(); err != nil {
		return fmt.Errorf("UNLINK %s on %s: %w", staging, mc.Options().Addr, err)
	}
	pipe := mc.Pipeline()
	var batch []any
	var size, queued int
	var pushed int64
	flush := func(final bool) error {
		if len(batch) > 0 {
			pipe.RPush(ctx, staging, batch...)
			batch, size, queued = nil, 0, queued+1
		}
		if queued == 0 || (!final && queued < pipeline) {
			return nil
		}
		cmds, err := pipe.Exec(ctx)
		queued = 0
		if err != nil {
			return fmt.Errorf("RPUSH %s on %s: %w", staging, mc.Options().Addr, err)
		}
		pushed = cmds[len(cmds)-1].(*redis.IntCmd).Val()
		return nil
	}
	var perr error
	n, err := rdb.ListElements(q.payload, func(e []byte) {
		if perr != nil {
			return
		}
		batch = append(batch, string(e)) // copied: e is only valid during the call
		size += len(e)
		if len(batch) >= batchElements || size >= batchBytes {
			perr = flush(false)
		}
	})
	if err == nil {
		err = perr
	}
	if err == nil {
		err = flush(true)
	}
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", o.Key, err)
	}
	if pushed != n {
		return fmt.Errorf("rebuild %s: staging list has %d elements, the backup %d", o.Key, pushed, n)
	}
	if o.Replace {
		// Not a RENAME over the queue: that also dropped what ingest
		// acknowledged between the plan and now.
		err := redis.NewScript(discardScript).Run(ctx, mc, []string{o.Key}, plan.n, plan.first, plan.last).Err()
		if err != nil {
			if uerr := mc.Unlink(ctx, staging).Err(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("UNLINK %s: %w", staging, uerr))
			}
			return fmt.Errorf("discard the %d elements of %s counted by the plan, on %s: %w", plan.n, o.Key, mc.Options().Addr, err)
		}
		fmt.Fprintf(o.Out, "master: %d elements of %s discarded\n", plan.n, o.Key)
	}
	prepend := redis.NewScript(prependScript)
	for moved := int64(0); ; {
		r, err := prepend.Run(ctx, mc, []string{o.Key, staging}, batchElements, batchBytes).Int64Slice()
		if err == nil && len(r) != 2 {
			err = fmt.Errorf("unexpected reply %v", r)
		}
		if err != nil {
			return fmt.Errorf("merge %s into %s on %s after %d of %d elements (the queue starts with the backup's last %d, %s holds the rest): %w",
				staging, o.Key, mc.Options().Addr, moved, n, moved, staging, err)
		}
		left, qlen := r[0], r[1]
		moved = n - left
		if left == 0 {
			res.KeptCurrent = qlen - n
			break
		}
	}
	if q.key.ExpireAt > 0 {
		if err := mc.PExpireAt(ctx, o.Key, time.UnixMilli(q.key.ExpireAt)).Err(); err != nil {
			return fmt.Errorf("PEXPIREAT %s: %w", o.Key, err)
		}
	}
	res.Restored = n
	fmt.Fprintf(o.Out, "master: %s restored (%d from the backup, %d kept)\n", o.Key, res.Restored, res.KeptCurrent)
	return nil
}

func restoreOther(ctx context.Context, master, username, password string, val value) error {
	c := client(master, username, password, val.db)
	defer c.Close()
	args := []any{"RESTORE", string(val.key.Name), val.key.ExpireAt, val.dump}
	if val.key.ExpireAt > 0 {
		if val.key.ExpireAt <= time.Now().UnixMilli() {
			return nil // expired since the backup
		}
		args = append(args, "ABSTTL")
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("RESTORE db%d %q: %w", val.db, val.key.Name, err)
	}
	return nil
}

// findMaster asks every Sentinel; all that answer must name the same master,
// and that server must say it is a master.
func findMaster(ctx context.Context, o Options) (string, error) {
	master := o.Redis.RedisAddr
	if master == "" {
		seen := map[string][]string{}
		var errs []error
		for _, sa := range o.Redis.SentinelAddrs {
			addr, err := sentinelMaster(ctx, sa, o)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			seen[addr] = append(seen[addr], sa)
		}
		if len(seen) != 1 {
			return "", fmt.Errorf("refusing to restore: the Sentinels do not agree on the master of %s: %v %v", o.Redis.SentinelMaster, seen, errors.Join(errs...))
		}
		for a := range seen {
			master = a
		}
	}
	c := client(master, o.Redis.RedisUsername, o.Redis.RedisPassword, 0)
	defer c.Close()
	if err := redisconn.CheckMaster(ctx, c); err != nil {
		return "", fmt.Errorf("refusing to restore on %s: %w", master, err)
	}
	return master, nil
}

func sentinelMaster(ctx context.Context, addr string, o Options) (string, error) {
	return o.Redis.MasterAddr(ctx, addr, redisconn.Options{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
}

// connectedReplicas reads the master's INFO replication.
func connectedReplicas(ctx context.Context, mc *redis.Client) ([]string, error) {
	info, err := mc.Info(ctx, "replication").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO replication on %s: %w", mc.Options().Addr, err)
	}
	var out []string
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "ip=") {
			continue
		}
		_, kv, _ := strings.Cut(line, ":")
		f := map[string]string{}
		for _, p := range strings.Split(kv, ",") {
			k, v, _ := strings.Cut(p, "=")
			f[k] = v
		}
		if f["state"] == "online" {
			out = append(out, net.JoinHostPort(f["ip"], f["port"]))
		}
	}
	return out, nil
}

// checkReplicas waits until every replica holds the queue the master holds,
// starting with the backup's first element.
func checkReplicas(ctx context.Context, mc *redis.Client, o Options, replicas []string, res *Result) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if n, err := mc.Wait(ctx, len(replicas), min(o.Timeout, 30*time.Second)).Result(); err != nil || n < int64(len(replicas)) {
		return fmt.Errorf("WAIT %d replicas on %s: %d acknowledged, %v", len(replicas), mc.Options().Addr, n, err)
	}
	first, err := mc.LIndex(ctx, o.Key, 0).Result()
	if err != nil && res.Restored > 0 {
		return fmt.Errorf("LINDEX %s 0 on master: %w", o.Key, err)
	}
	for _, r := range replicas {
		rc := client(r, o.Redis.RedisUsername, o.Redis.RedisPassword, 0)
		err := func() error {
			defer rc.Close()
			for {
				ml, err1 := mc.LLen(ctx, o.Key).Result()
				rl, err2 := rc.LLen(ctx, o.Key).Result()
				rf, err3 := rc.LIndex(ctx, o.Key, 0).Result()
				if err := errors.Join(err1, err2, err3); err == nil && ml == rl && rf == first {
					res.FinalLength = ml
					fmt.Fprintf(o.Out, "replica %s: %s has %d elements, like the master\n", r, o.Key, rl)
					return nil
				} else if ctx.Err() != nil {
					return fmt.Errorf("replica %s does not match the master (master %d, replica %d elements): %v", r, ml, rl, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		if err != nil {
			return err
		}
	}
	if len(replicas) == 0 {
		l, err := mc.LLen(ctx, o.Key).Result()
		if err != nil {
			return err
		}
		res.FinalLength = l
	}
	return nil
}

// checkSentinels waits until every Sentinel names the master and counts
// its replicas.
func checkSentinels(ctx context.Context, o Options, master string) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for _, sa := range o.Redis.SentinelAddrs {
		for {
			got, err := sentinelMaster(ctx, sa, o)
			if err == nil && got == master {
				fmt.Fprintf(o.Out, "sentinel %s: master of %s is %s\n", sa, o.Redis.SentinelMaster, got)
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("sentinel %s names %q as master, want %s: %v", sa, got, master, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}
