package status

import (
	"fmt"
	"strconv"
	"strings"
)

// Replication is the part of INFO replication that status shows.
type Replication struct {
	Role       string // master or slave
	Offset     int64  // master_repl_offset
	MasterHost string // replicas: master_host:master_port
	LinkUp     bool   // replicas: master_link_status:up
	Replicas   []ReplicaInfo
}

// ReplicaInfo is one slaveN line of a master's INFO replication.
type ReplicaInfo struct {
	Addr   string // ip:port as the replica announces it (its hostname here)
	State  string // online, wait_bgsave, send_bulk, ...
	Offset int64  // replication offset the replica acknowledged
	Lag    int64  // seconds since its last ACK
}

// ParseInfo parses the "key:value" lines of an INFO reply.
func ParseInfo(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// ParseReplication reads INFO replication output.
func ParseReplication(text string) (Replication, error) {
	m := ParseInfo(text)
	r := Replication{Role: m["role"]}
	if r.Role == "" {
		return r, fmt.Errorf("INFO replication: no role field")
	}
	off, err := strconv.ParseInt(m["master_repl_offset"], 10, 64)
	if err != nil {
		return r, fmt.Errorf("INFO replication: master_repl_offset %q: %w", m["master_repl_offset"], err)
	}
	r.Offset = off
	if r.Role == "slave" {
		r.MasterHost = m["master_host"] + ":" + m["master_port"]
		r.LinkUp = m["master_link_status"] == "up"
	}
	n, _ := strconv.Atoi(m["connected_slaves"])
	for i := 0; i < n; i++ {
		line, ok := m["slave"+strconv.Itoa(i)]
		if !ok {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Split(line, ",") {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		ri := ReplicaInfo{Addr: kv["ip"] + ":" + kv["port"], State: kv["state"]}
		ri.Offset, _ = strconv.ParseInt(kv["offset"], 10, 64)
		ri.Lag, _ = strconv.ParseInt(kv["lag"], 10, 64)
		r.Replicas = append(r.Replicas, ri)
	}
	return r, nil
}
