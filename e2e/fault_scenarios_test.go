//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// 1: SIGKILL one ingest container, keep it down a while, start it again.
func killIngest(f *faultRun) error {
	if err := f.s.Node("ingest-2").Kill(f.ctx); err != nil {
		return err
	}
	f.markFault()
	sleepCtx(f.ctx, 4*time.Second)
	if err := f.s.Node("ingest-2").Start(f.ctx); err != nil {
		return err
	}
	err := f.s.HAProxy.WaitUp(f.ctx, len(f.s.Ingest.Names()))
	f.markHeal()
	return err
}

// 2: graceful rolling restart: SIGTERM each ingest container in turn (docker
// stop waits for its drain), start it, and wait until HAProxy has it UP again.
func rollingRestart(f *faultRun) error {
	f.markFault()
	for _, n := range f.s.Ingest.Names() {
		t0 := time.Now()
		if err := f.s.Node(n).Stop(f.ctx, 60*time.Second); err != nil {
			return err
		}
		stopped := time.Since(t0)
		if err := f.s.Node(n).Start(f.ctx); err != nil {
			return err
		}
		if err := f.s.HAProxy.WaitUp(f.ctx, len(f.s.Ingest.Names())); err != nil {
			return err
		}
		f.note("%s: SIGTERM to exit %s, back UP in HAProxy after %s", n, stopped.Round(10*time.Millisecond), time.Since(t0).Round(10*time.Millisecond))
	}
	f.markHeal()
	return nil
}

// onlyShuttingDown checks the drain promise of scenario 2: clients see no
// resets and no error but SHUTTING_DOWN (then they reconnect).
func onlyShuttingDown(f *faultRun) []string {
	var bad []string
	var keys []string
	for reason, n := range f.rec.Timing().Disconnects {
		if reason == "ERR SHUTTING_DOWN" || reason == "client close" {
			continue
		}
		keys = append(keys, fmt.Sprintf("%s x%d", reason, n))
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		bad = append(bad, "rolling restart: clients saw disconnects other than SHUTTING_DOWN: "+strings.Join(keys, ", "))
	}
	if f.rec.Timing().Disconnects["ERR SHUTTING_DOWN"] == 0 {
		bad = append(bad, "rolling restart: no client saw SHUTTING_DOWN, so the drain was not exercised")
	}
	return bad
}

// 3: SIGKILL the master and keep it down until Sentinel promoted a replica
// and a few seconds passed; then start it and check it rejoins as a replica.
func killMasterKeepDown(f *faultRun) error {
	old, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	if err := f.s.Node(old).Kill(f.ctx); err != nil {
		return err
	}
	f.markFault()
	promoted, perr := waitPromoted(f.ctx, f.s, old, SentinelNames()...)
	if perr == nil {
		f.note("killed master %s; Sentinels promoted %s after %s", old, promoted, time.Since(f.faultAt).Round(10*time.Millisecond))
		sleepCtx(f.ctx, 5*time.Second)
	}
	down := f.rec.AcksBetween(f.faultAt.Add(time.Second), time.Now())
	f.note("%d messages acked while %s was down (INGEST_MIN_REPLICAS=%d, 1 replica left)", down, old, f.minReplicas)
	// Start the old master even when the promotion did not come, so that
	// the stack is healed for the next scenario.
	if err := f.s.Node(old).Start(f.ctx); err != nil {
		return errors.Join(perr, err)
	}
	f.markHeal()
	if perr != nil {
		return perr
	}
	if err := waitRole(f.ctx, f.s, old, "slave", 60*time.Second); err != nil {
		return fmt.Errorf("old master did not rejoin as a replica: %w", err)
	}
	f.note("%s rejoined as a replica %s after its start", old, time.Since(f.healAt).Round(10*time.Millisecond))
	return nil
}

// 4: SIGKILL the master and start it again before Sentinel's down-after: the
// master comes back from its AOF, and its replicas resynchronise from it. For
// this scenario the Sentinels' down-after is raised to 10 s at runtime (and
// restored afterwards) so that the restart reliably beats it.
func killMasterRestartFast(f *faultRun) error {
	old, restore, err := killMasterBeforeDownAfter(f)
	if err != nil {
		return err
	}
	defer restore()
	if err := f.s.Node(old).Start(f.ctx); err != nil {
		return err
	}
	f.markHeal()
	restarted := time.Since(f.faultAt)
	if err := waitRole(f.ctx, f.s, old, "master", 30*time.Second); err != nil {
		return err
	}
	f.note("killed and restarted master %s in %s (down-after raised to 10 s for this scenario); serving again after %s",
		old, restarted.Round(10*time.Millisecond), time.Since(f.faultAt).Round(10*time.Millisecond))
	sleepCtx(f.ctx, 3*time.Second)
	now, err := f.s.Redis.Master(f.ctx)
	switch {
	case err != nil:
		return err
	case now != old:
		f.note("a failover happened anyway: the master is now %s", now)
	default:
		f.note("no failover: %s is still the master", old)
	}
	return nil
}

// killMasterBeforeDownAfter raises the Sentinels' down-after to 10 s, so that
// what the scenario does next comes before any failover, kills the master and
// marks the fault. restore puts the suite's down-after back.
func killMasterBeforeDownAfter(f *faultRun) (old string, restore func(), err error) {
	old, err = f.s.Redis.Master(f.ctx)
	if err != nil {
		return "", nil, err
	}
	if err := setDownAfter(f.ctx, f.s, 10*time.Second); err != nil {
		return "", nil, err
	}
	restore = func() {
		if err := setDownAfter(context.Background(), f.s, f.downAfter); err != nil {
			f.note("restore down-after: %v", err)
		}
	}
	if err := f.s.Node(old).Kill(f.ctx); err != nil {
		restore()
		return "", nil, err
	}
	f.markFault()
	return old, restore, nil
}

func setDownAfter(ctx context.Context, s *Stack, d time.Duration) error {
	var errs []error
	for _, sn := range SentinelNames() {
		if err := s.Redis.Sentinel(sn).Set(ctx, SentinelMaster, "down-after-milliseconds", fmt.Sprint(d.Milliseconds())).Err(); err != nil {
			errs = append(errs, fmt.Errorf("sentinel set on %s: %w", sn, err))
		}
	}
	return errors.Join(errs...)
}

// partitioned cuts a from b, waits until the majority Sentinels promote a new
// master, holds the partition a few seconds more, and heals it.
func partitioned(f *faultRun, old string, a, b []string, majority []string) error {
	aborts := sentinelLogCount(f, majority, "-failover-abort-not-elected")
	heal, err := Partition(f.ctx, f.s, a, b)
	if err != nil {
		return err
	}
	f.markFault()
	defer func() {
		if heal != nil {
			_ = heal(context.Background())
		}
	}()
	promoted, perr := waitPromoted(f.ctx, f.s, old, majority...)
	if perr == nil {
		f.note("partition %v | %v: %v promoted %s after %s (failover attempts aborted as not elected meanwhile: %d)",
			a, b, majority, promoted, time.Since(f.faultAt).Round(10*time.Millisecond),
			sentinelLogCount(f, majority, "-failover-abort-not-elected")-aborts)
	}
	sleepCtx(f.ctx, 4*time.Second)
	during := f.rec.AcksBetween(f.faultAt.Add(time.Second), time.Now())
	f.note("%d messages acked during the partition (after its first second)", during)
	herr := heal(f.ctx)
	heal = nil
	f.markHeal()
	if err := errors.Join(perr, herr); err != nil {
		return err
	}
	if err := waitRole(f.ctx, f.s, old, "slave", 60*time.Second); err != nil {
		return fmt.Errorf("old master after the partition: %w", err)
	}
	f.note("old master %s demoted to replica %s after the heal", old, time.Since(f.healAt).Round(10*time.Millisecond))
	return nil
}

// 5: the master, one Sentinel and one ingest container cut off from the other
// Redis nodes, Sentinels and ingest containers. HAProxy (the clients' side)
// still reaches every ingest container.
func isolateMaster(f *faultRun) error {
	old, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	a := []string{old, "sentinel-1", "ingest-1"}
	b := append(replicasOf(old), "sentinel-2", "sentinel-3")
	b = append(b, f.s.Ingest.Names()[1:]...)
	return partitioned(f, old, a, b, []string{"sentinel-2", "sentinel-3"})
}

// 6: {master, replica-1, sentinel-1} | {replica-2, sentinel-2, sentinel-3}.
// The ingest containers reach both sides. With WAIT for 1 replica, the old
// master keeps acking through replica-1 while replica-2 is promoted.
func splitBrain(f *faultRun) error {
	old, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	reps := replicasOf(old)
	a := []string{old, reps[0], "sentinel-1"}
	b := []string{reps[1], "sentinel-2", "sentinel-3"}
	return partitioned(f, old, a, b, []string{"sentinel-2", "sentinel-3"})
}

// 7: docker pause the master for longer than down-after, then unpause it.
func pauseMaster(f *faultRun) error {
	old, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	if err := f.s.Node(old).Pause(f.ctx); err != nil {
		return err
	}
	f.markFault()
	promoted, perr := waitPromoted(f.ctx, f.s, old, SentinelNames()...)
	if perr == nil {
		f.note("paused master %s; Sentinels promoted %s after %s", old, promoted, time.Since(f.faultAt).Round(10*time.Millisecond))
	}
	sleepCtx(f.ctx, 2*time.Second)
	uerr := f.s.Node(old).Unpause(f.ctx)
	f.markHeal()
	if err := errors.Join(perr, uerr); err != nil {
		return err
	}
	if err := waitRole(f.ctx, f.s, old, "slave", 60*time.Second); err != nil {
		return fmt.Errorf("old master after unpause: %w", err)
	}
	f.note("%s demoted to replica %s after the unpause", old, time.Since(f.healAt).Round(10*time.Millisecond))
	return nil
}

// 8: SIGKILL one replica, keep it down, start it again.
func killReplica(f *faultRun) error {
	m, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	victim := replicasOf(m)[0]
	if err := f.s.Node(victim).Kill(f.ctx); err != nil {
		return err
	}
	f.markFault()
	sleepCtx(f.ctx, 6*time.Second)
	// Acks may legitimately resume as soon as the replica is back, which
	// can be before the heal is marked: the window of the check ends here.
	f.recoverAt = time.Now()
	if err := f.s.Node(victim).Start(f.ctx); err != nil {
		return err
	}
	f.markHeal()
	err = waitRole(f.ctx, f.s, victim, "slave", 30*time.Second)
	f.note("killed replica %s for 6 s; a replica again %s after its start", victim, time.Since(f.healAt).Round(10*time.Millisecond))
	return err
}

// acksFollowMinReplicas checks scenario 8: with INGEST_MIN_REPLICAS equal to
// the number of replicas, no ack may be given while one of them is down (a
// 1 s grace covers flushes replicated before the kill); with fewer, acks go on.
func acksFollowMinReplicas(f *faultRun) []string {
	from := f.faultAt.Add(time.Second)
	n := f.rec.AcksBetween(from, f.recoverAt)
	f.note("%d messages acked while the replica was down (from 1 s after the kill to its restart)", n)
	replicas := len(RedisNames()) - 1
	switch {
	case f.minReplicas >= replicas && n > 0:
		return []string{fmt.Sprintf("INGEST_MIN_REPLICAS=%d but %d messages were acked with one of %d replicas down", f.minReplicas, n, replicas)}
	case f.minReplicas < replicas && n == 0:
		return []string{fmt.Sprintf("INGEST_MIN_REPLICAS=%d allows acks with one replica down, but none came", f.minReplicas)}
	}
	return nil
}

// 9: reload HAProxy (SIGUSR2, when it runs in master-worker mode), then
// restart it, under load.
func restartHAProxy(f *faultRun) error {
	f.markFault()
	if cmdline, err := f.s.Node("haproxy").Exec(f.ctx, "cat", "/proc/1/cmdline"); err == nil && strings.Contains(cmdline, "-W") {
		before := f.rec.Timing().Disconnects
		if err := f.s.Node("haproxy").Signal(f.ctx, "SIGUSR2"); err != nil {
			return err
		}
		sleepCtx(f.ctx, 3*time.Second)
		f.note("reload (SIGUSR2, master-worker): disconnects before %v, after %v", before, f.rec.Timing().Disconnects)
	} else {
		f.note("HAProxy does not run in master-worker mode (-W): no reload step")
	}
	t0 := time.Now()
	if err := f.s.Node("haproxy").Restart(f.ctx); err != nil {
		return err
	}
	err := f.s.HAProxy.WaitUp(f.ctx, len(f.s.Ingest.Names()))
	f.note("HAProxy restarted, all ingest UP after %s", time.Since(t0).Round(10*time.Millisecond))
	f.markHeal()
	return err
}

// sentinelLogCount counts log lines containing event in the given Sentinels' logs.
func sentinelLogCount(f *faultRun, sentinels []string, event string) int {
	n := 0
	for _, sn := range sentinels {
		n += strings.Count(f.s.Node(sn).Logs(f.ctx), event)
	}
	return n
}
