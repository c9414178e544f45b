//go:build e2e

package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const haproxyCfgPath = "/etc/haproxy/haproxy.cfg"

// HAProxy is the HAProxy side of a stack (Stack.HAProxy): its published data
// ports and its stats, through which the ingest servers' status is read.
type HAProxy struct {
	nodes *Containers
	// The stats page and the exporter ask for these (basic auth).
	statsUser, statsPassword string
}

// start starts HAProxy with the repository's haproxy.cfg.
func (h *HAProxy) start(ctx context.Context) error {
	_, err := h.nodes.run(ctx, containerSpec{
		name:  "haproxy",
		image: h.nodes.Image("haproxy"),
		env: map[string]string{
			"HAPROXY_STATS_USER":     h.statsUser,
			"HAPROXY_STATS_PASSWORD": h.statsPassword,
		},
		files: []repoFile{{"haproxy/haproxy.cfg", haproxyCfgPath, 0o644}},
		ports: []string{dataPort, httpPort, noackPort, statsPort},
	})
	return err
}

// Addr is HAProxy's data port (9501) on 127.0.0.1, read afresh from Docker
// (it changes when HAProxy restarts).
func (h *HAProxy) Addr(ctx context.Context) (string, error) { return h.Port(ctx, dataPort) }

// Port is the 127.0.0.1 address one of HAProxy's ports is published on:
// dataPort, httpPort, noackPort or statsPort.
func (h *HAProxy) Port(ctx context.Context, port string) (string, error) {
	return h.nodes.Node("haproxy").HostAddr(ctx, port)
}

// StatRow is one line of HAProxy's stats CSV.
type StatRow struct {
	Proxy  string // pxname
	Server string // svname: a server name, FRONTEND or BACKEND
	Status string // UP, DOWN, MAINT, "UP 1/3", "no check", ...
	Addr   string // server address ip:port ("" for frontends/backends, or unresolved)
	Scur   int    // current sessions
	Stot   int    // total sessions
	Raw    map[string]string
}

// IsServer reports whether the row is a server (not a FRONTEND/BACKEND summary).
func (r StatRow) IsServer() bool { return r.Server != "FRONTEND" && r.Server != "BACKEND" }

// Stats reads HAProxy's stats CSV (`/stats;csv`) with basic auth.
func (h *HAProxy) Stats(ctx context.Context) ([]StatRow, error) {
	addr, err := h.Port(ctx, statsPort)
	if err != nil {
		return nil, err
	}
	return readStats(ctx, "http://"+addr+"/stats;csv", h.statsUser, h.statsPassword)
}

func readStats(ctx context.Context, url, user, password string) ([]StatRow, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return parseStats(string(body))
}

func parseStats(body string) ([]StatRow, error) {
	body = strings.TrimPrefix(body, "# ")
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse stats csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("parse stats csv: empty")
	}
	head := recs[0]
	var rows []StatRow
	for _, rec := range recs[1:] {
		raw := map[string]string{}
		for i, k := range head {
			if i < len(rec) && k != "" {
				raw[k] = rec[i]
			}
		}
		row := StatRow{Proxy: raw["pxname"], Server: raw["svname"], Status: raw["status"], Addr: raw["addr"], Raw: raw}
		row.Scur, _ = strconv.Atoi(raw["scur"])
		row.Stot, _ = strconv.Atoi(raw["stot"])
		rows = append(rows, row)
	}
	return rows, nil
}

// IngestServers returns HAProxy's server rows for the ingest backend (the
// server-template slots; unresolved slots have no address and are MAINT).
func (h *HAProxy) IngestServers(ctx context.Context) ([]StatRow, error) {
	rows, err := h.Stats(ctx)
	if err != nil {
		return nil, err
	}
	var out []StatRow
	for _, r := range rows {
		if r.IsServer() && r.Proxy == "ingest" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ingest servers in HAProxy stats (%d rows)", len(rows))
	}
	return out, nil
}

// IngestServer returns the HAProxy server row whose address is the given
// ingest container's IP.
func (h *HAProxy) IngestServer(ctx context.Context, name string) (StatRow, error) {
	ip, err := h.nodes.Node(name).IP(ctx)
	if err != nil {
		return StatRow{}, err
	}
	rows, err := h.IngestServers(ctx)
	if err != nil {
		return StatRow{}, err
	}
	for _, r := range rows {
		if host, _, err := net.SplitHostPort(r.Addr); err == nil && host == ip {
			return r, nil
		}
	}
	return StatRow{}, fmt.Errorf("no HAProxy server with address %s (%s); servers: %s", ip, name, describeRows(rows))
}

// WaitUp waits until n ingest servers are UP in HAProxy.
func (h *HAProxy) WaitUp(ctx context.Context, n int) error {
	return retry(ctx, 200*time.Millisecond, func() error {
		rows, err := h.IngestServers(ctx)
		if err != nil {
			return err
		}
		up := 0
		for _, r := range rows {
			if strings.HasPrefix(r.Status, "UP") {
				up++
			}
		}
		if up < n {
			return fmt.Errorf("%d of %d ingest servers UP: %s", up, n, describeRows(rows))
		}
		return nil
	})
}

// WaitServerStatus waits until HAProxy reports the ingest container's server
// with a status that starts with want ("UP", "DOWN", ...).
func (h *HAProxy) WaitServerStatus(ctx context.Context, name, want string) (StatRow, error) {
	var row StatRow
	err := retry(ctx, 100*time.Millisecond, func() error {
		r, err := h.IngestServer(ctx, name)
		if err != nil {
			return err
		}
		row = r
		if !strings.HasPrefix(r.Status, want) {
			return fmt.Errorf("%s (%s) is %q, want %s", name, r.Server, r.Status, want)
		}
		return nil
	})
	return row, err
}

func describeRows(rows []StatRow) string {
	parts := make([]string, 0, len(rows))
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s/%s %s %q", r.Proxy, r.Server, r.Addr, r.Status))
	}
	return strings.Join(parts, ", ")
}
