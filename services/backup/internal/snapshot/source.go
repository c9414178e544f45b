package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/internal/redisconn"
)

// source is the server a snapshot is taken from.
type source struct {
	Addr        string
	Role        string // "replica" or "configured"
	MasterName  string
	MasterAddr  string
	MasterRunID string
}

// ErrNoReplica means no Sentinel knew an online replica. The master is never
// used instead: a snapshot must not load the server that takes the writes.
var ErrNoReplica = errors.New("no online replica")

// findSource picks the snapshot source: the configured node in single-node
// mode, otherwise the online replica (per Sentinel, confirmed with ROLE)
// with the highest replication offset.
func (s *Snapshotter) findSource(ctx context.Context) (source, error) {
	if s.opts.Redis.RedisAddr != "" {
		return source{Addr: s.opts.Redis.RedisAddr, Role: "configured"}, nil
	}
	var errs []error
	for _, sa := range s.opts.Redis.SentinelAddrs {
		src, err := s.askSentinel(ctx, sa)
		if err == nil {
			return src, nil
		}
		errs = append(errs, err)
	}
	return source{}, fmt.Errorf("find a replica of %s: %w", s.opts.Redis.SentinelMaster, errors.Join(errs...))
}

func (s *Snapshotter) askSentinel(ctx context.Context, addr string) (source, error) {
	sc := s.opts.Redis.NewSentinel(addr, redisconn.Options{
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	defer sc.Close()
	master, err := sc.Master(ctx, s.opts.Redis.SentinelMaster).Result()
	if err != nil {
		return source{}, fmt.Errorf("sentinel %s: SENTINEL MASTER %s: %w", addr, s.opts.Redis.SentinelMaster, err)
	}
	replicas, err := sc.Replicas(ctx, s.opts.Redis.SentinelMaster).Result()
	if err != nil {
		return source{}, fmt.Errorf("sentinel %s: SENTINEL REPLICAS %s: %w", addr, s.opts.Redis.SentinelMaster, err)
	}
	type cand struct {
		addr   string
		offset int64
	}
	var cands []cand
	for _, r := range replicas {
		// Sentinel refreshes master-link-status only every 10 s, so it is not
		// trusted either way: confirmReplica asks the server.
		if flagged(r["flags"], "s_down", "o_down", "disconnected") {
			continue
		}
		off, _ := strconv.ParseInt(r["slave-repl-offset"], 10, 64)
		cands = append(cands, cand{net.JoinHostPort(r["ip"], r["port"]), off})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].offset > cands[j].offset })
	var errs []error
	for _, c := range cands {
		if err := s.confirmReplica(ctx, c.addr); err != nil {
			errs = append(errs, err)
			continue
		}
		return source{
			Addr: c.addr, Role: "replica", MasterName: s.opts.Redis.SentinelMaster,
			MasterAddr: net.JoinHostPort(master["ip"], master["port"]), MasterRunID: master["runid"],
		}, nil
	}
	errs = append(errs, fmt.Errorf("sentinel %s lists %d replicas of %s, %d online: %w",
		addr, len(replicas), s.opts.Redis.SentinelMaster, len(cands), ErrNoReplica))
	return source{}, errors.Join(errs...)
}

// confirmReplica asks the server itself: Sentinel's view lags a failover.
func (s *Snapshotter) confirmReplica(ctx context.Context, addr string) error {
	c := s.opts.Redis.Node(addr, redisconn.Options{
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, NoRetries: true, NoIdentity: true,
	})
	defer c.Close()
	return redisconn.CheckReplica(ctx, c)
}

func flagged(flags string, any ...string) bool {
	for _, f := range strings.Split(flags, ",") {
		for _, a := range any {
			if f == a {
				return true
			}
		}
	}
	return false
}
