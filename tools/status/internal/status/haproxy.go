package status

import (
	"encoding/csv"
	"fmt"
	"strings"
)

// StatsRow is one line of HAProxy's stats CSV (/stats;csv), by column name.
type StatsRow map[string]string

// Proxy is the frontend or backend name (pxname).
func (r StatsRow) Proxy() string { return r["pxname"] }

// Server is the server name (svname): FRONTEND, BACKEND or a server.
func (r StatsRow) Server() string { return r["svname"] }

// Status is UP, DOWN, MAINT, "UP 1/2", no check, OPEN, ...
func (r StatsRow) Status() string { return r["status"] }

// ParseStatsCSV parses HAProxy's stats CSV; the first line is the header
// ("# pxname,svname,...").
func ParseStatsCSV(text string) ([]StatsRow, error) {
	text = strings.TrimPrefix(strings.TrimLeft(text, " \n"), "# ")
	rd := csv.NewReader(strings.NewReader(text))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("stats csv: %w", err)
	}
	if len(recs) == 0 || len(recs[0]) < 2 || recs[0][0] != "pxname" {
		return nil, fmt.Errorf("stats csv: no pxname,svname header (is this HAProxy's /stats;csv?)")
	}
	head := recs[0]
	rows := make([]StatsRow, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		r := StatsRow{}
		for i, v := range rec {
			if i < len(head) && head[i] != "" {
				r[head[i]] = v
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// Backend summarises one backend: its own status and its servers that have
// an address (server-template slots without one are MAINT and left out).
type Backend struct {
	Name    string
	Status  string // of the BACKEND row
	Servers []Server
	Unused  int // template slots without an address
}

// Server is one backend server.
type Server struct {
	Name, Addr, Status, Check string
}

// Up counts the servers whose status starts with UP.
func (b Backend) Up() int {
	n := 0
	for _, s := range b.Servers {
		if strings.HasPrefix(s.Status, "UP") {
			n++
		}
	}
	return n
}

// Backends groups the rows into backends, in the order of the CSV.
func Backends(rows []StatsRow) []Backend {
	var out []Backend
	idx := map[string]int{}
	get := func(name string) *Backend {
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			out = append(out, Backend{Name: name})
		}
		return &out[i]
	}
	for _, r := range rows {
		switch r.Server() {
		case "FRONTEND":
			continue
		case "BACKEND":
			// Frontends without a backend (stats) have no BACKEND row.
			get(r.Proxy()).Status = r.Status()
		default:
			b := get(r.Proxy())
			addr := r["addr"]
			if strings.HasPrefix(r.Status(), "MAINT") && (addr == "" || strings.HasPrefix(addr, "0.0.0.0") || strings.HasPrefix(addr, "-")) {
				b.Unused++
				continue
			}
			b.Servers = append(b.Servers, Server{Name: r.Server(), Addr: addr, Status: r.Status(), Check: r["check_status"]})
		}
	}
	return out
}
