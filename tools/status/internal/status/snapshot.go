package status

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Snapshot is everything one screen shows. Collect fills it; Render and
// Problems only read it, so both are tested on fixtures.
type Snapshot struct {
	Time time.Time
	Key  string

	Master    Master
	Sentinels []SentinelView

	Ingests   []IngestView
	IngestErr error // the ingest host did not resolve
	Rate      Rate

	HAProxy    []Backend
	HAProxyErr error
	HAProxyOff bool

	Backup       BackupView
	BackupOff    bool
	BackupMaxAge time.Duration
}

// Master is the master the Sentinels name and what it says about itself.
type Master struct {
	Addr     string // empty: no Sentinel named one
	Role     string // ROLE as the node reports it in INFO replication
	Offset   int64
	Err      error // INFO replication failed
	QueueLen int64
	QueueErr error
	Replicas []ReplicaView
}

// ReplicaView merges a master's slaveN line with Sentinel's view of the replica.
type ReplicaView struct {
	Addr      string
	State     string // from the master's INFO; empty: not connected to the master
	Behind    int64  // master offset minus the replica's acknowledged offset, bytes
	Lag       int64  // seconds since the replica's last ACK
	Connected bool   // listed by the master
	Flags     string // Sentinel's flags ("slave", "s_down,slave", ...); empty: unknown to Sentinel
}

// SentinelView is one Sentinel's answer.
type SentinelView struct {
	Addr     string
	Master   string // host:port it names
	Quorum   string // configured quorum (SENTINEL MASTER)
	CkQuorum string // the CKQUORUM reply
	CkErr    error  // CKQUORUM failed (NOQUORUM ...)
	Err      error  // unreachable, auth, unknown master
}

// IngestView is one ingest container.
type IngestView struct {
	Name  string // reverse DNS name, container name
	Addr  string // ip:admin port
	Ready bool
	Info  string // /ready body or status when not ready
	Err   error  // /ready unreachable
}

// Rate is computed from two /metrics scrapes of every ingest a sample apart.
type Rate struct {
	Instances int           // ingests scraped twice
	Window    time.Duration // mean time between the two scrapes
	Acked     float64       // messages acked per second, all ingests
	P99       float64       // seconds
	HaveP99   bool          // there were acks in the window
	Err       error         // some scrape failed
}

// BackupView is read from the backup service's /metrics.
type BackupView struct {
	LastSuccess time.Time // zero: no snapshot yet
	SizeBytes   float64
	Failures    float64
	Snapshots   float64
	Err         error
}

// Agreement counts the Sentinels that name the most named master.
func (s Snapshot) Agreement() (master string, agree, answered int) {
	votes := map[string]int{}
	for _, sv := range s.Sentinels {
		if sv.Err == nil && sv.Master != "" {
			votes[sv.Master]++
			answered++
		}
	}
	for m, n := range votes {
		if n > agree || (n == agree && m < master) {
			master, agree = m, n
		}
	}
	return master, agree, answered
}

// ReadyCount is the number of ready ingests.
func (s Snapshot) ReadyCount() int {
	n := 0
	for _, in := range s.Ingests {
		if in.Ready {
			n++
		}
	}
	return n
}

// Problems lists what is wrong, one short sentence each; empty when the
// stack is healthy.
func (s Snapshot) Problems() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	master, agree, answered := s.Agreement()
	switch {
	case answered == 0:
		add("no Sentinel answered")
	case agree < len(s.Sentinels):
		add("%d of %d Sentinels name %s", agree, len(s.Sentinels), master)
	}
	for _, sv := range s.Sentinels {
		if sv.Err != nil {
			add("sentinel %s: %v", sv.Addr, sv.Err)
		} else if sv.CkErr != nil {
			add("sentinel %s CKQUORUM: %v", sv.Addr, sv.CkErr)
		}
	}
	m := s.Master
	switch {
	case m.Addr == "":
	case m.Err != nil:
		add("master %s: %v", m.Addr, m.Err)
	case m.Role != "master":
		add("%s is named master but is a %s", m.Addr, m.Role)
	}
	for _, r := range m.Replicas {
		switch {
		case !r.Connected:
			add("replica %s is not connected to the master", r.Addr)
		case r.State != "online":
			add("replica %s is %s", r.Addr, r.State)
		case strings.Contains(r.Flags, "down"):
			add("Sentinel flags replica %s %s", r.Addr, r.Flags)
		}
	}
	if m.Addr != "" && m.Err == nil && m.QueueErr != nil {
		add("LLEN %s: %v", s.Key, m.QueueErr)
	}
	if s.IngestErr != nil {
		add("ingest: %v", s.IngestErr)
	} else if r := s.ReadyCount(); r < len(s.Ingests) || len(s.Ingests) == 0 {
		add("%d of %d ingest containers ready", r, len(s.Ingests))
	}
	if s.HAProxyErr != nil {
		add("haproxy: %v", s.HAProxyErr)
	}
	for _, b := range s.HAProxy {
		if len(b.Servers) > 0 && b.Up() < len(b.Servers) {
			add("haproxy backend %s: %d of %d servers UP", b.Name, b.Up(), len(b.Servers))
		} else if len(b.Servers) == 0 && strings.HasPrefix(b.Name, "ingest") {
			add("haproxy backend %s has no server", b.Name)
		}
	}
	if s.Rate.Err != nil {
		add("metrics: %v", s.Rate.Err)
	}
	switch b := s.Backup; {
	case s.BackupOff:
	case b.Err != nil:
		add("backup: %v", b.Err)
	case b.LastSuccess.IsZero():
		add("backup: no snapshot yet")
	case s.BackupMaxAge > 0 && s.Time.Sub(b.LastSuccess) > s.BackupMaxAge:
		add("backup: last snapshot %s ago (more than %s)", Age(s.Time.Sub(b.LastSuccess)), s.BackupMaxAge)
	}
	return p
}

// mergeReplicas joins the master's slaveN lines with Sentinel's replica
// list (ip:port and flags), sorted by address.
func mergeReplicas(masterOffset int64, info []ReplicaInfo, sentinel map[string]string) []ReplicaView {
	byAddr := map[string]*ReplicaView{}
	for _, ri := range info {
		byAddr[ri.Addr] = &ReplicaView{Addr: ri.Addr, State: ri.State, Behind: max(0, masterOffset-ri.Offset), Lag: ri.Lag, Connected: true}
	}
	for addr, flags := range sentinel {
		if v, ok := byAddr[addr]; ok {
			v.Flags = flags
			continue
		}
		byAddr[addr] = &ReplicaView{Addr: addr, Flags: flags}
	}
	out := make([]ReplicaView, 0, len(byAddr))
	for _, v := range byAddr {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// Age formats a duration the way the screen shows ages: 45s, 12m3s, 5h2m, 3d4h.
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// Bytes formats a byte count: 512 B, 1.5 KiB, 12.0 MiB.
func Bytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", int64(n))
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
