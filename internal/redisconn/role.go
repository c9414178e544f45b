package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrNotMaster is returned when the server reached is not a master (for
// example after a stale Sentinel answer).
var ErrNotMaster = errors.New("redis server is not the master")

// MasterCheck rejects new connections to a server that is not the master
// and notices master changes. Its hooks are optional (metrics, logs).
type MasterCheck struct {
	// Rejected is called when a connection reached a server whose ROLE is
	// role, not master; the connection is refused with ErrNotMaster.
	Rejected func(role string)
	// Changed is called when a connection reaches another master than the
	// one before (its address as the server sees the connection's local end).
	Changed func(from, to string)

	mu     sync.Mutex
	master string // server address of the last accepted master connection
}

func (mc *MasterCheck) onConnect(ctx context.Context, cn *redis.Conn) error {
	var role, info *redis.Cmd
	_, err := cn.Pipelined(ctx, func(p redis.Pipeliner) error {
		role = p.Do(ctx, "ROLE")
		info = p.Do(ctx, "client", "info")
		return nil
	})
	_ = err // per-command errors are checked below
	name, err := RoleName(role)
	if err != nil {
		return fmt.Errorf("check role: %w", err)
	}
	if name == "sentinel" {
		// go-redis runs OnConnect on its Sentinel connections too.
		return nil
	}
	if name != "master" {
		if mc.Rejected != nil {
			mc.Rejected(name)
		}
		return fmt.Errorf("%w: ROLE is %s", ErrNotMaster, name)
	}
	if text, err := info.Text(); err == nil {
		if addr := field(text, "laddr"); addr != "" {
			mc.mu.Lock()
			prev := mc.master
			mc.master = addr
			mc.mu.Unlock()
			if prev != "" && prev != addr && mc.Changed != nil {
				mc.Changed(prev, addr)
			}
		}
	}
	return nil
}

// field returns the value of key in a "k=v k=v" line (CLIENT INFO).
func field(line, key string) string {
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// RoleName returns the first element of a ROLE reply.
func RoleName(cmd *redis.Cmd) (string, error) {
	v, err := cmd.Result()
	if err != nil {
		return "", err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return "", fmt.Errorf("unexpected ROLE reply %v", v)
	}
	name, ok := arr[0].(string)
	if !ok {
		return "", fmt.Errorf("unexpected ROLE reply %v", v)
	}
	return name, nil
}

// CheckMaster runs ROLE through the client and reports an error unless the
// server answering is a master (wrapping ErrNotMaster if it is not).
func CheckMaster(ctx context.Context, rdb *redis.Client) error {
	name, err := RoleName(rdb.Do(ctx, "ROLE"))
	if err != nil {
		return fmt.Errorf("redis ROLE: %w", err)
	}
	if name != "master" {
		return fmt.Errorf("%w: ROLE is %s", ErrNotMaster, name)
	}
	return nil
}

// CheckReplica runs ROLE through the client and reports an error unless
// the server is a replica connected to its master. Sentinel's view lags a
// failover; the server's own answer does not.
func CheckReplica(ctx context.Context, rdb *redis.Client) error {
	addr := rdb.Options().Addr
	role, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil {
		return fmt.Errorf("ROLE on %s: %w", addr, err)
	}
	if len(role) < 4 || role[0] != "slave" || role[3] != "connected" {
		return fmt.Errorf("ROLE on %s: %v, want a connected replica", addr, role)
	}
	return nil
}

// MasterAddr asks the Sentinel at sentinelAddr for the address of c's
// master.
func (c Config) MasterAddr(ctx context.Context, sentinelAddr string, o Options) (string, error) {
	sc := c.NewSentinel(sentinelAddr, o)
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, c.SentinelMaster).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sentinelAddr, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: master address %v", sentinelAddr, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}
