//go:build e2e

package e2e

// Scenarios of issue 10 §3 (fast recovery): every Redis node killed at once,
// and a node lost with its disk and recreated as `make up` or `terraform apply`
// recreate it. Each reports the time from the heal to the first ack.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// 12: SIGKILL all three Redis nodes, start them again 3 s later.
func killAllRedis(f *faultRun) error {
	old, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	// Sentinel resolves a node's name once and keeps connecting to that
	// address: if the restarted nodes swap addresses, it talks to the wrong one.
	ipsBefore := nodeIPs(f)
	defer func() { f.note("Redis node addresses before the kill %v, after the start %v", ipsBefore, nodeIPs(f)) }()
	var errs []error
	for _, n := range RedisNames() {
		errs = append(errs, f.s.Node(n).Kill(f.ctx))
	}
	f.markFault()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	sleepCtx(f.ctx, 3*time.Second)
	for _, n := range RedisNames() {
		errs = append(errs, f.s.Node(n).Start(f.ctx))
	}
	f.markHeal()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := f.s.Redis.WaitConverged(f.ctx); err != nil {
		return fmt.Errorf("after the restart of every node: %w", err)
	}
	now, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	f.note("killed every Redis node (master %s), started them 3 s later; converged on master %s %s after the start",
		old, now, time.Since(f.healAt).Round(10*time.Millisecond))
	return nil
}

// nodeIPs are the Redis nodes' addresses on the stack network, in name order.
func nodeIPs(f *faultRun) []string {
	var ips []string
	for _, n := range RedisNames() {
		ip, err := f.s.Node(n).IP(f.ctx)
		if err != nil {
			ip = "?"
		}
		ips = append(ips, ip)
	}
	return ips
}

// recreate removes a Redis node's container with its data (a lost disk) and
// runs a new one under the same name, as `make up` does for a missing
// container. The heal is marked when the new container is asked for, as an
// operator's `make up` starts.
func recreate(f *faultRun, name string) error {
	if err := f.s.Node(name).Container().Terminate(f.ctx); err != nil {
		return fmt.Errorf("remove %s with its data: %w", name, err)
	}
	f.markHeal()
	return f.s.Redis.StartNode(f.ctx, name)
}

// 13: a replica lost with its disk; the recreated node must sync from the
// master, and acks (which wait for both replicas) resume once it has.
func replicaLostWithDisk(f *faultRun) error {
	m, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	victim := replicasOf(m)[0]
	if err := f.s.Node(victim).Kill(f.ctx); err != nil {
		return err
	}
	f.markFault()
	sleepCtx(f.ctx, 3*time.Second)
	if err := recreate(f, victim); err != nil {
		return err
	}
	if err := waitRole(f.ctx, f.s, victim, "slave", 60*time.Second); err != nil {
		return fmt.Errorf("recreated %s: %w", victim, err)
	}
	f.note("replica %s lost with its disk and recreated; replica again %s after the new container started",
		victim, time.Since(f.healAt).Round(10*time.Millisecond))
	return nil
}

// 14: the master lost with its disk, its container recreated before the
// Sentinels' down-after (raised to 10 s for this scenario): they still name
// it master, so a node that trusted them would start as an empty master and
// its replicas would copy the empty data set. It must come back as a replica
// of a promoted node instead.
func masterLostWithDisk(f *faultRun) error {
	old, restore, err := killMasterBeforeDownAfter(f)
	if err != nil {
		return err
	}
	defer restore()
	if err := recreate(f, old); err != nil {
		return err
	}
	f.note("master %s lost with its disk, recreated %s after the kill", old, f.healAt.Sub(f.faultAt).Round(10*time.Millisecond))
	if err := waitRole(f.ctx, f.s, old, "slave", 60*time.Second); err != nil {
		return fmt.Errorf("recreated master %s: %w", old, err)
	}
	now, err := f.s.Redis.Master(f.ctx)
	if err != nil {
		return err
	}
	f.note("%s is a replica of %s %s after the new container started", old, now, time.Since(f.healAt).Round(10*time.Millisecond))
	return nil
}

// TestFaultsShippedTimings runs the scenarios whose recovery hangs on
// Sentinel's timings again, with the down-after and failover-timeout that
// compose/compose.yaml ships instead of the suite's short ones: the recovery
// times users see.
func TestFaultsShippedTimings(t *testing.T) {
	ms := func(name string) time.Duration {
		v, err := shippedEnv(repoRoot(t), "sentinel-1", name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("compose/compose.yaml: %s=%q: %v", name, v, err)
		}
		return time.Duration(n) * time.Millisecond
	}
	s := StartStack(t, WithDownAfter(ms("SENTINEL_DOWN_AFTER_MS")), WithFailoverTimeout(ms("SENTINEL_FAILOVER_TIMEOUT_MS")))
	for _, sc := range []scenario{
		{id: "05s", name: "partition {master, sentinel-1, ingest-1} | rest", fault: isolateMaster},
		splitBrainScenario("06s"),
		{id: "07s", name: "docker pause the master beyond down-after", fault: pauseMaster},
		{id: "12s", name: "SIGKILL all three Redis nodes, start them 3 s later", fault: killAllRedis},
	} {
		t.Run(sc.id+"-"+slug(sc.name), func(t *testing.T) { runScenario(t, s, sc) })
	}
}

// logMark remembers how many log lines each container had, so that what
// they logged during a scenario can be noted afterwards. A container
// recreated meanwhile (a new ID) counts from its first line.
type logMark map[string]logPos

type logPos struct {
	id    string
	lines int
}

func markLogs(f *faultRun, names ...string) logMark {
	m := logMark{}
	for _, n := range names {
		m[n] = logPos{id: f.s.Node(n).ID(), lines: len(strings.Split(f.s.Node(n).Logs(f.ctx), "\n"))}
	}
	return m
}

// noteSince notes the lines logged since the mark that contain one of
// words: the Sentinels' failover events, the entrypoint's role changes.
func (m logMark) noteSince(f *faultRun, words ...string) {
	for _, n := range slices.Sorted(maps.Keys(m)) {
		lines := strings.Split(f.s.Node(n).Logs(f.ctx), "\n")
		from := m[n].lines
		if f.s.Node(n).ID() != m[n].id {
			from = 0
		}
		for _, l := range lines[min(from, len(lines)):] {
			if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) }) {
				f.note("%s: %s", n, strings.TrimSpace(l))
			}
		}
	}
}

// failoverWords are the Sentinel events and entrypoint lines worth a note.
var failoverWords = []string{"+tilt", "-tilt", "+odown", "+try-failover", "+elected-leader", "+selected-slave", "+promoted-slave",
	"-failover-abort", "+failover-end", "+switch-master", "+convert-to-slave", "sluice-entrypoint"}
