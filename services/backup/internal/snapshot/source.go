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

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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
	if s.opts.RedisAddr != "" {
		return source{Addr: s.opts.RedisAddr, Role: "configured"}, nil
	}
	var errs []error
	for _, sa := range s.opts.SentinelAddrs {
		src, err := s.askSentinel(ctx, sa)
		if err == nil {
			return src, nil
		}
		errs = append(errs, err)
	}
	return source{}, fmt.Errorf("find a replica of %s: %w", s.opts.MasterName, errors.Join(errs...))
}

func (s *Snapshotter) askSentinel(ctx context.Context, addr string) (source, error) {
	sc := redis.NewSentinelClient(&redis.Options{
		Addr: addr, Username: s.opts.SentinelUsername, Password: s.opts.SentinelPassword,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	defer sc.Close()
	master, err := sc.Master(ctx, s.opts.MasterName).Result()
	if err != nil {
		return source{}, fmt.Errorf("sentinel %s: SENTINEL MASTER %s: %w", addr, s.opts.MasterName, err)
	}
	replicas, err := sc.Replicas(ctx, s.opts.MasterName).Result()
	if err != nil {
		return source{}, fmt.Errorf("sentinel %s: SENTINEL REPLICAS %s: %w", addr, s.opts.MasterName, err)
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
			Addr: c.addr, Role: "replica", MasterName: s.opts.MasterName,
			MasterAddr: net.JoinHostPort(master["ip"], master["port"]), MasterRunID: master["runid"],
		}, nil
	}
	errs = append(errs, fmt.Errorf("sentinel %s lists %d replicas of %s, %d online: %w",
		addr, len(replicas), s.opts.MasterName, len(cands), ErrNoReplica))
	return source{}, errors.Join(errs...)
}

// confirmReplica asks the server itself: Sentinel's view lags a failover.
func (s *Snapshotter) confirmReplica(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{
		Addr: addr, Username: s.opts.Username, Password: s.opts.Password, DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, MaxRetries: -1, DisableIdentity: true,
		// Redis 7.0 has no maintenance notifications: skip the handshake.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	defer c.Close()
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return fmt.Errorf("ROLE on %s: %w", addr, err)
	}
	if len(role) < 4 || role[0] != "slave" || role[3] != "connected" {
		return fmt.Errorf("ROLE on %s: %v, want a connected replica", addr, role)
	}
	return nil
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
