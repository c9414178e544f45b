package status

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Render writes one screen (at most about 40 lines of at most 150
// columns for the shipped stack) describing s.
func Render(w io.Writer, s Snapshot) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s%s\n", label, fmt.Sprintf(format, args...))
	}
	problems := s.Problems()
	verdict := "OK"
	if len(problems) > 0 {
		verdict = fmt.Sprintf("%d PROBLEM(S)", len(problems))
	}
	fmt.Fprintf(&b, "sluice status  %s  %s\n\n", s.Time.UTC().Format("2006-01-02 15:04:05 UTC"), verdict)

	// Redis: the master the Sentinels name, then each replica.
	m := s.Master
	switch {
	case m.Addr == "":
		line("REDIS", "master unknown: no Sentinel answered")
	case m.Err != nil:
		line("REDIS", "master %s: %v", m.Addr, m.Err)
	default:
		role := ""
		if m.Role != "master" {
			role = "  (reports role " + m.Role + "!)"
		}
		line("REDIS", "master   %-22s offset %d%s", m.Addr, m.Offset, role)
	}
	for _, r := range m.Replicas {
		switch {
		case !r.Connected:
			line("", "replica  %-22s NOT CONNECTED to the master (Sentinel: %s)", r.Addr, orDash(r.Flags))
		default:
			line("", "replica  %-22s %-8s behind %-10s lag %ds%s", r.Addr, r.State, Bytes(float64(r.Behind)), r.Lag, sentinelNote(r.Flags))
		}
	}

	// Sentinels: agreement and quorum.
	master, agree, _ := s.Agreement()
	quorum := ""
	for _, sv := range s.Sentinels {
		if sv.Err == nil && sv.Master == master {
			quorum = sv.Quorum
			break
		}
	}
	if master == "" {
		line("SENTINEL", "0/%d answered", len(s.Sentinels))
	} else {
		word := "agree"
		if agree < len(s.Sentinels) {
			word = "DISAGREE:"
		}
		line("SENTINEL", "%d/%d %s master %s, quorum %s", agree, len(s.Sentinels), word, master, orDash(quorum))
	}
	for _, sv := range s.Sentinels {
		switch {
		case sv.Err != nil:
			line("", "%-22s %v", sv.Addr, sv.Err)
		case sv.CkErr != nil:
			line("", "%-22s master %-18s CKQUORUM %v", sv.Addr, sv.Master, sv.CkErr)
		default:
			line("", "%-22s master %-18s CKQUORUM %s", sv.Addr, sv.Master, sv.CkQuorum)
		}
	}

	// Ingest readiness.
	if s.IngestErr != nil {
		line("INGEST", "%v", s.IngestErr)
	} else {
		line("INGEST", "%d/%d ready", s.ReadyCount(), len(s.Ingests))
	}
	for _, in := range s.Ingests {
		switch {
		case in.Err != nil:
			line("", "%-28s %v", in.Name, in.Err)
		case in.Ready:
			line("", "%-28s %-21s ready", in.Name, in.Addr)
		default:
			line("", "%-28s %-21s NOT READY: %s", in.Name, in.Addr, in.Info)
		}
	}

	// HAProxy backends.
	switch {
	case s.HAProxyOff:
		line("HAPROXY", "(not asked)")
	case s.HAProxyErr != nil:
		line("HAPROXY", "%v", s.HAProxyErr)
	case len(s.HAProxy) == 0:
		line("HAPROXY", "no backends")
	}
	for i, be := range s.HAProxy {
		var servers []string
		for _, sv := range be.Servers {
			servers = append(servers, sv.Name+" "+sv.Status)
		}
		label := ""
		if i == 0 {
			label = "HAPROXY"
		}
		line(label, "%-13s %-5s %d/%d UP  %s", be.Name, be.Status, be.Up(), len(be.Servers), strings.Join(servers, ", "))
	}

	// Queue, throughput, backup.
	switch {
	case m.Addr == "" || m.Err != nil:
		line("QUEUE", "%s: unknown (no master)", s.Key)
	case m.QueueErr != nil:
		line("QUEUE", "%s: LLEN failed: %v", s.Key, m.QueueErr)
	default:
		line("QUEUE", "%s length %d on %s", s.Key, m.QueueLen, m.Addr)
	}
	r := s.Rate
	switch {
	case r.Instances == 0 && r.Err != nil:
		line("ACKS", "unknown: %v", r.Err)
	case r.Instances == 0:
		line("ACKS", "unknown: no ingest scraped")
	default:
		p99 := "p99 ack latency -- (no acks in the window)"
		if r.HaveP99 {
			p99 = "p99 ack latency " + Millis(r.P99)
		}
		line("ACKS", "%.1f msg/s acked, %s  (%d ingest(s), %.1f s window)", r.Acked, p99, r.Instances, r.Window.Seconds())
	}
	bk := s.Backup
	switch {
	case s.BackupOff:
		line("BACKUP", "(not asked)")
	case bk.Err != nil:
		line("BACKUP", "%v", bk.Err)
	case bk.LastSuccess.IsZero():
		line("BACKUP", "no snapshot yet (%.0f failed)", bk.Failures)
	default:
		line("BACKUP", "last snapshot %s ago (%s, %s), %.0f taken, %.0f failed",
			Age(s.Time.Sub(bk.LastSuccess)), bk.LastSuccess.Format(time.RFC3339), Bytes(bk.SizeBytes), bk.Snapshots, bk.Failures)
	}

	if len(problems) > 0 {
		b.WriteString("\n")
		for i, p := range problems {
			label := ""
			if i == 0 {
				label = "PROBLEMS"
			}
			line(label, "- %s", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Millis formats seconds as milliseconds: 0.4 ms, 12.5 ms, 1200 ms.
func Millis(sec float64) string {
	ms := sec * 1000
	if ms >= 100 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

func sentinelNote(flags string) string {
	switch flags {
	case "slave":
		return ""
	case "":
		return "  (unknown to Sentinel)"
	}
	return "  (Sentinel: " + flags + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
