//go:build e2e

package e2e

// The zero-acknowledged-loss fault suite (issue 4). Each scenario runs under
// steady, bounded load from several client connections through HAProxy,
// injects one fault, heals it, waits until the Sentinels agree on one master
// and every replica has caught up, and then checks with the Recorder that
// lost = acked - read and unexpected = read - attempted are empty. Every
// scenario writes e2e/out/scenario-<id>.json; `make reliability-report` turns
// those into the table in RELIABILITY.md.
//
// The scenarios share one stack (the shipped configuration with short
// Sentinel timings) and each leaves it healed; the next one first checks that
// it converged. Scenario 6 runs again on its own stack with
// INGEST_MIN_REPLICAS=1, the setting that is known to lose acked data there.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/reliability"
)

// scenario is one fault of the suite.
type scenario struct {
	id, name string
	// before and after are the steady-load phases around the fault.
	before, after time.Duration
	// lossAllowed marks a setting known to be unsafe: its loss is reported,
	// not failed.
	lossAllowed bool
	// ignoreForeign leaves entries of hostile clients out of "unexpected".
	ignoreForeign bool
	// fault injects the fault and heals it; it calls f.markFault and f.markHeal.
	fault func(f *faultRun) error
	// extra checks scenario-specific promises after the load; it returns failures.
	extra func(f *faultRun) []string
	// setup runs before the load starts (a consumer, for example).
	setup func(f *faultRun) error
	// consumed stops the scenario's consumers after the load and returns
	// what they took out of the list: it counts as read, before what the
	// list still holds.
	consumed func() []string
}

// faultRun is the state of one running scenario.
type faultRun struct {
	t           *testing.T
	ctx         context.Context
	s           *Stack
	rec         *Recorder
	minReplicas int
	downAfter   time.Duration
	faultAt     time.Time
	healAt      time.Time
	// recoverAt is when the recovery step began (scenario 8: replica restart).
	recoverAt time.Time
	notes     []string
	failures  []string
}

// fail records a broken scenario-specific promise.
func (f *faultRun) fail(format string, args ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *faultRun) markFault() {
	f.faultAt = time.Now()
	f.rec.MarkFault(f.faultAt)
}

func (f *faultRun) markHeal() {
	f.healAt = time.Now()
	f.rec.MarkHeal(f.healAt)
}

func (f *faultRun) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.notes = append(f.notes, msg)
	f.t.Log("e2e: " + msg)
}

func TestFaults(t *testing.T) {
	// The harness defaults to the shipped INGEST_MIN_REPLICAS, read from
	// compose/compose.yaml, so that the suite tests what users run (the
	// binary's own default may differ).
	s := StartStack(t)
	for _, sc := range shippedScenarios() {
		t.Run(sc.id+"-"+slug(sc.name), func(t *testing.T) { runScenario(t, s, sc) })
	}
}

// TestFaultsMinReplicas1 runs the partition of scenario 6 with
// INGEST_MIN_REPLICAS=1 (WAIT for 1 of 2 replicas). It may lose acked data:
// that is reported in RELIABILITY.md as the reason for the shipped default,
// and does not fail the suite.
//
// On the same stack, scenario 8 checks the other side of the trade-off: with
// WAIT for 1 of 2 replicas, acks go on while one replica is down.
func TestFaultsMinReplicas1(t *testing.T) {
	s := StartStack(t, WithMinReplicas(1))
	split := splitBrainScenario("06b")
	split.lossAllowed = true
	replica := scenario{id: "08b", name: "SIGKILL one replica", fault: killReplica, extra: acksFollowMinReplicas}
	for _, sc := range []scenario{split, replica} {
		t.Run(sc.id+"-"+slug(sc.name), func(t *testing.T) { runScenario(t, s, sc) })
	}
}

func shippedScenarios() []scenario {
	return []scenario{
		{id: "01", name: "SIGKILL one ingest", fault: killIngest},
		{id: "02", name: "rolling restart of all ingest (SIGTERM)", fault: rollingRestart, extra: onlyShuttingDown},
		{id: "03", name: "SIGKILL the master, keep it down, restart it", fault: killMasterKeepDown},
		{id: "04", name: "SIGKILL the master, restart before down-after", fault: killMasterRestartFast},
		{id: "05", name: "partition {master, sentinel-1, ingest-1} | rest", fault: isolateMaster},
		splitBrainScenario("06"),
		{id: "07", name: "docker pause the master beyond down-after", fault: pauseMaster},
		{id: "08", name: "SIGKILL one replica", fault: killReplica, extra: acksFollowMinReplicas},
		{id: "09", name: "restart HAProxy under load", fault: restartHAProxy},
		{id: "10", name: "hostile clients beside normal ones", fault: hostileClients, ignoreForeign: true, after: 2 * time.Second},
		{id: "12", name: "SIGKILL all three Redis nodes, start them 3 s later", fault: killAllRedis},
		{id: "13", name: "a replica lost with its disk, recreated", fault: replicaLostWithDisk},
		{id: "14", name: "the master lost with its disk, recreated before down-after", fault: masterLostWithDisk},
	}
}

// TestFaultsBoundedQueue runs scenario 11 on a stack whose queue is bounded
// (INGEST_MAX_QUEUE_LEN), with the shipped INGEST_MIN_REPLICAS.
func TestFaultsBoundedQueue(t *testing.T) {
	s := StartStack(t, WithIngestEnv(map[string]string{
		"INGEST_MAX_QUEUE_LEN": strconv.Itoa(boundedQueueLen),
	}))
	sc := stalledConsumerScenario()
	t.Run(sc.id+"-"+slug(sc.name), func(t *testing.T) { runScenario(t, s, sc) })
}

func splitBrainScenario(id string) scenario {
	return scenario{id: id, name: "partition {master, replica-1, sentinel-1} | {replica-2, sentinel-2, sentinel-3}", fault: splitBrain}
}

func runScenario(t *testing.T, s *Stack, sc scenario) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	if sc.before == 0 {
		sc.before = 3 * time.Second
	}
	if sc.after == 0 {
		sc.after = 3 * time.Second
	}
	if err := prepare(ctx, s); err != nil {
		t.Fatalf("stack not healed before the scenario: %v", err)
	}
	f := &faultRun{
		t: t, ctx: ctx, s: s,
		rec:         NewRecorder(fmt.Sprintf("s%s-%d", sc.id, time.Now().UnixNano()%1_000_000), time.Now()),
		minReplicas: effectiveMinReplicas(ctx, s),
		downAfter:   s.Config().DownAfter,
	}
	setting := fmt.Sprintf("INGEST_MIN_REPLICAS=%d, down-after %d ms", f.minReplicas, f.downAfter.Milliseconds())
	t.Logf("e2e: scenario %s %q with %s", sc.id, sc.name, setting)

	var infra []string
	if sc.setup != nil {
		if err := sc.setup(f); err != nil {
			t.Fatalf("scenario setup: %v", err)
		}
	}
	load := StartLoad(ctx, f.rec, LoadOptions{Addr: haproxyAddr(s), Workers: 4, Rate: 250, Window: 400, MaxPerWorker: 20000})
	sleepCtx(ctx, sc.before)
	// What the Sentinels and the Redis entrypoints log during the scenario
	// (failover events, TILT, role decisions) goes into its notes.
	logs := markLogs(f, append(RedisNames(), SentinelNames()...)...)
	if err := sc.fault(f); err != nil {
		infra = append(infra, "fault: "+err.Error())
	}
	if f.faultAt.IsZero() {
		f.markFault()
	}
	if f.healAt.IsZero() {
		f.markHeal()
	}
	sleepCtx(ctx, sc.after)
	left := load.Stop(20 * time.Second)
	if left > 0 {
		f.note("%d messages still unacked after the 20 s drain (their outcome is checked as indeterminate)", left)
	}

	// The scenario's consumers stop before the read-back.
	var consumed []string
	if sc.consumed != nil {
		consumed = sc.consumed()
	}
	t0 := time.Now()
	if err := s.Redis.WaitConverged(ctx); err != nil {
		infra = append(infra, "not converged after the fault: "+err.Error())
	}
	master, list, replicas, err := readBack(ctx, s)
	if err != nil {
		infra = append(infra, "read back: "+err.Error())
	}
	f.note("converged and read back from %s in %s", master, time.Since(t0).Round(10*time.Millisecond))
	if sc.consumed != nil {
		// The replicas hold what the master's list still holds; the
		// consumed messages are read before it.
		for name, rl := range replicas {
			if !slices.Equal(rl, list) {
				infra = append(infra, fmt.Sprintf("replica %s differs from the master's list: %s", name, diffLists(list, rl)))
			}
		}
		f.note("%d messages consumed, %d left in the list", len(consumed), len(list))
		list, replicas = append(consumed, list...), nil
	}
	v := f.rec.Check(list, replicas, CheckOptions{IgnoreForeign: sc.ignoreForeign})
	tm := f.rec.Timing()
	infra = append(infra, f.failures...)
	if sc.extra != nil {
		infra = append(infra, sc.extra(f)...)
	}
	if v.OrderViolations > 0 {
		f.note("%d messages stored before an earlier message of the same connection (per-connection order broken)", v.OrderViolations)
	}
	if v.Foreign > 0 {
		f.note("%d entries from hostile clients ignored by the checker", v.Foreign)
	}
	logs.noteSince(f, failoverWords...)
	problems := v.Problems()

	res := reliability.Result{
		ID: sc.id, Name: sc.name, Setting: setting, MinReplicas: f.minReplicas, LossAllowed: sc.lossAllowed,
		Attempted: v.Attempted, Acked: v.Acked, Indeterminate: v.Indeterminate, Resent: v.Resent, Read: v.Read,
		Lost: len(v.Lost), Unexpected: len(v.Unexpected), Recovered: v.Recovered,
		Duplicates: v.Duplicates, IllegalDuplicates: len(v.IllegalDuplicates), OrderViolations: v.OrderViolations,
		ReplicaMismatch: v.ReplicaMismatch,
		AcksResumeMS:    msOrNeg(tm.AcksResume), AcksAfterHealMS: msOrNeg(tm.AcksAfterHeal), MaxAckGapMS: tm.MaxAckGap.Milliseconds(),
		RateBefore: tm.RateBefore, RateDuring: tm.RateDuring, RateAfter: tm.RateAfter,
		Disconnects: tm.Disconnects, Notes: f.notes,
		Failures:  append(append([]string{}, infra...), problems...),
		StartedAt: began.UTC(), Seconds: time.Since(began).Seconds(),
	}
	res.Pass = len(res.Failures) == 0
	out := filepath.Join(repoRoot(t), "e2e", "out")
	if err := reliability.Write(out, res); err != nil {
		t.Errorf("write result: %v", err)
	}
	t.Logf("e2e: scenario %s: attempted %d acked %d read %d lost %d unexpected %d dups %d (illegal %d) recovered %d indeterminate %d; "+
		"acks resume %v (first ack %v after the heal), max ack gap %v; acked/s %.0f / %.0f / %.0f; disconnects %v; %.1f s",
		sc.id, v.Attempted, v.Acked, v.Read, len(v.Lost), len(v.Unexpected), v.Duplicates, len(v.IllegalDuplicates),
		v.Recovered, v.Indeterminate, tm.AcksResume, tm.AcksAfterHeal, tm.MaxAckGap, tm.RateBefore, tm.RateDuring, tm.RateAfter,
		tm.Disconnects, res.Seconds)
	for _, p := range infra {
		t.Errorf("scenario %s: %s", sc.id, p)
	}
	for _, p := range problems {
		if sc.lossAllowed {
			t.Logf("scenario %s (unsafe setting, reported only): %s", sc.id, p)
		} else {
			t.Errorf("scenario %s: %s", sc.id, p)
		}
	}
}

func msOrNeg(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}

func slug(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, s), "-")
}

// prepare makes sure every container runs (a failed scenario may leave one
// stopped or paused), waits for convergence and all ingest servers UP in
// HAProxy, and empties the queue so the read-back holds this scenario only.
func prepare(ctx context.Context, s *Stack) error {
	for _, n := range s.Names() {
		st, err := s.Node(n).State(ctx)
		if err != nil {
			return err
		}
		switch st {
		case "paused":
			err = s.Node(n).Unpause(ctx)
		case "running":
		default:
			err = s.Node(n).Start(ctx)
		}
		if err != nil {
			return err
		}
	}
	if err := s.Redis.WaitConverged(ctx); err != nil {
		return err
	}
	if err := s.HAProxy.WaitUp(ctx, len(s.Ingest.Names())); err != nil {
		return err
	}
	m, err := s.Redis.Master(ctx)
	if err != nil {
		return err
	}
	// A converged master may still refuse a write for a moment (NOREPLICAS:
	// min-replicas-to-write while a busy replica's last ack is older than
	// min-replicas-max-lag); the suite only needs the list empty.
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := retry(dctx, 200*time.Millisecond, func() error { return s.Redis.Client(m).Del(dctx, QueueKey).Err() }); err != nil {
		return fmt.Errorf("clear %s on %s: %w", QueueKey, m, err)
	}
	return s.Redis.WaitConverged(ctx)
}

// readBack reads the queue from the master the Sentinels agree on and from
// every replica. Ingest may still finish a retried flush of a dropped
// connection, so it repeats until master and replicas show the same list
// twice in a row (or 60 s pass, and the differences are reported).
func readBack(ctx context.Context, s *Stack) (master string, list []string, replicas map[string][]string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var prevLen = -1
	for {
		master, err = s.Redis.Master(ctx)
		if err == nil {
			list, err = s.Redis.Client(master).LRange(ctx, QueueKey, 0, -1).Result()
		}
		if err == nil {
			replicas = map[string][]string{}
			same := true
			for _, n := range RedisNames() {
				if n == master {
					continue
				}
				l, rerr := s.Redis.Client(n).LRange(ctx, QueueKey, 0, -1).Result()
				if rerr != nil {
					err = fmt.Errorf("lrange on replica %s: %w", n, rerr)
					break
				}
				replicas[n] = l
				same = same && slices.Equal(l, list)
			}
			if err == nil {
				if rerr := checkRoles(ctx, s, master); rerr != nil {
					err = rerr
				} else if same && len(list) == prevLen {
					return master, list, replicas, nil
				} else if same {
					prevLen = len(list)
				}
			}
		}
		select {
		case <-ctx.Done():
			if err == nil && list != nil {
				// Lists read but replicas never matched (or kept changing):
				// the checker reports the mismatch from this snapshot.
				return master, list, replicas, nil
			}
			if err == nil {
				err = errors.New("nothing read within 60 s")
			}
			return master, list, replicas, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkRoles asks every node for ROLE: master must be master and every other
// node a replica of it.
func checkRoles(ctx context.Context, s *Stack, master string) error {
	var errs []error
	for _, n := range RedisNames() {
		role, err := s.Redis.Client(n).Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 {
			errs = append(errs, fmt.Errorf("role of %s: %v", n, err))
			continue
		}
		switch {
		case n == master && role[0] != "master":
			errs = append(errs, fmt.Errorf("%s is the Sentinels' master but ROLE says %v", n, role[0]))
		case n != master && (role[0] != "slave" || len(role) < 2 || role[1] != master):
			errs = append(errs, fmt.Errorf("%s: ROLE %v, want replica of %s", n, role, master))
		}
	}
	return errors.Join(errs...)
}

// haproxyAddr resolves HAProxy's published data port on every reconnect (a
// restarted HAProxy gets a new host port) and falls back to the last known one.
func haproxyAddr(s *Stack) func() string {
	var last atomic.Value
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if a, err := s.HAProxy.Addr(ctx); err == nil {
			last.Store(a)
			return a
		}
		if a, ok := last.Load().(string); ok {
			return a
		}
		return "127.0.0.1:1" // nothing listens there: the worker retries
	}
}

// ingestEnv reads one environment variable of ingest-1 from Docker.
func ingestEnv(ctx context.Context, s *Stack, key string) (string, bool) {
	v, ok, err := s.Node("ingest-1").Env(ctx, key)
	if err != nil {
		return "", false
	}
	return v, ok
}

// effectiveMinReplicas is INGEST_MIN_REPLICAS as the ingest containers run
// it (the binary's default, 0, when unset).
func effectiveMinReplicas(ctx context.Context, s *Stack) int {
	v, ok := ingestEnv(ctx, s, "INGEST_MIN_REPLICAS")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// waitFor polls cond every 200 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s (last error: %v)", what, d, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sentinelMaster is the master one Sentinel names (host part).
func sentinelMaster(ctx context.Context, s *Stack, sentinel string) (string, error) {
	addr, err := s.Redis.Sentinel(sentinel).GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", err
	}
	if len(addr) == 0 {
		return "", errors.New("empty answer")
	}
	return addr[0], nil
}

// waitPromoted waits until the given Sentinels name a master other than old.
func waitPromoted(ctx context.Context, s *Stack, old string, sentinels ...string) (string, error) {
	var promoted string
	// Generous: a Sentinel in TILT mode has taken ~1 min (RELIABILITY.md);
	// the promotion time is reported in the notes, never asserted.
	err := waitFor(ctx, 90*time.Second, "promotion away from "+old, func(ctx context.Context) (bool, error) {
		for _, sn := range sentinels {
			m, err := sentinelMaster(ctx, s, sn)
			if err != nil || m == old {
				return false, err
			}
			promoted = m
		}
		return true, nil
	})
	return promoted, err
}

// waitRole waits until ROLE of a node is want ("master" or "slave").
func waitRole(ctx context.Context, s *Stack, name, want string, d time.Duration) error {
	return waitFor(ctx, d, name+" role "+want, func(ctx context.Context) (bool, error) {
		role, err := s.Redis.Client(name).Do(ctx, "ROLE").Slice()
		if err != nil {
			return false, err
		}
		return len(role) > 0 && role[0] == want, nil
	})
}

func replicasOf(master string) []string {
	var out []string
	for _, n := range RedisNames() {
		if n != master {
			out = append(out, n)
		}
	}
	return out
}
