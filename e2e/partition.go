//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// canRoute reports whether a container can change its own routes: the Redis
// and Sentinel containers run with NET_ADMIN and have iproute2. The ingest
// image is FROM scratch, so an ingest container is cut off from the other
// side's containers (their replies to it are dropped, which ends any TCP
// exchange in both directions).
func canRoute(name string) bool {
	return strings.HasPrefix(name, "redis-") || strings.HasPrefix(name, "sentinel-")
}

func isIngest(name string) bool { return strings.HasPrefix(name, "ingest-") }

// Partition cuts every container of a off from every container of b with
// `ip route add blackhole <peer>/32` inside each routable container, in both
// directions where both sides can route. Containers in neither group (HAProxy,
// the clients' entry point) keep talking to everyone. It returns a heal
// function that deletes exactly the routes it added; heal is also registered
// nowhere else, so callers must call it (it is safe to call twice).
func Partition(ctx context.Context, s *Stack, a, b []string) (heal func(context.Context) error, err error) {
	ips := map[string]string{}
	for _, n := range append(append([]string{}, a...), b...) {
		ip, err := s.Node(n).IP(ctx)
		if err != nil {
			return nil, fmt.Errorf("partition: %w", err)
		}
		ips[n] = ip
	}
	type route struct{ in, peer string }
	var added []route
	heal = func(ctx context.Context) error {
		var errs []error
		for _, r := range added {
			if _, err := s.Node(r.in).Exec(ctx, "ip", "route", "del", "blackhole", ips[r.peer]+"/32"); err != nil {
				errs = append(errs, fmt.Errorf("heal %s -> %s: %w", r.in, r.peer, err))
			}
		}
		added = nil
		return errors.Join(errs...)
	}
	cut := func(in, peer string) error {
		if !canRoute(in) {
			return nil
		}
		if _, err := s.Node(in).Exec(ctx, "ip", "route", "add", "blackhole", ips[peer]+"/32"); err != nil {
			return fmt.Errorf("partition %s -> %s: %w", in, peer, err)
		}
		added = append(added, route{in: in, peer: peer})
		return nil
	}
	for _, x := range a {
		for _, y := range b {
			if !canRoute(x) && !canRoute(y) {
				// Two ingest containers never talk to each other: nothing to cut.
				if isIngest(x) && isIngest(y) {
					continue
				}
				_ = heal(ctx)
				return nil, fmt.Errorf("partition: neither %s nor %s can change its routes", x, y)
			}
			if err := errors.Join(cut(x, y), cut(y, x)); err != nil {
				return nil, errors.Join(err, heal(ctx))
			}
		}
	}
	return heal, nil
}
