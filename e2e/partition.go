//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
// the clients' entry point) keep talking to everyone. Each container gets all
// its routes in one command, all containers at once, so that the cut and the
// heal each take one `docker exec` (about 0.2 s), not one per route: the time
// to the first ack after the heal is measured from the heal's return. It
// returns a heal function that deletes exactly the routes it added; heal is
// also registered nowhere else, so callers must call it (it is safe to call
// twice).
func Partition(ctx context.Context, s *Stack, a, b []string) (heal func(context.Context) error, err error) {
	ips := map[string]string{}
	for _, n := range append(append([]string{}, a...), b...) {
		ip, err := s.Node(n).IP(ctx)
		if err != nil {
			return nil, fmt.Errorf("partition: %w", err)
		}
		ips[n] = ip
	}
	// peers: per routable container, the addresses it must not reach.
	peers := map[string][]string{}
	for _, x := range a {
		for _, y := range b {
			if !canRoute(x) && !canRoute(y) {
				// Two ingest containers never talk to each other: nothing to cut.
				if isIngest(x) && isIngest(y) {
					continue
				}
				return nil, fmt.Errorf("partition: neither %s nor %s can change its routes", x, y)
			}
			if canRoute(x) {
				peers[x] = append(peers[x], ips[y])
			}
			if canRoute(y) {
				peers[y] = append(peers[y], ips[x])
			}
		}
	}
	var mu sync.Mutex
	var added []string // containers whose routes are (maybe partly) in place
	heal = func(ctx context.Context) error {
		mu.Lock()
		in := added
		added = nil
		mu.Unlock()
		return routes(ctx, s, "del", in, peers)
	}
	all := make([]string, 0, len(peers))
	for n := range peers {
		all = append(all, n)
	}
	added = all
	if err := routes(ctx, s, "add", all, peers); err != nil {
		return nil, errors.Join(err, heal(ctx))
	}
	return heal, nil
}

// routes runs `ip route <op> blackhole <peer>/32` for every peer of each
// container in one exec per container, all containers in parallel. A "del"
// goes on past a route that is missing.
func routes(ctx context.Context, s *Stack, op string, containers []string, peers map[string][]string) error {
	const script = `rc=0; op=$1; shift; for p in "$@"; do ip route "$op" blackhole "$p/32" || rc=1; done; exit $rc`
	errs := make([]error, len(containers))
	var wg sync.WaitGroup
	for i, n := range containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := append([]string{"sh", "-c", script, "sh", op}, peers[n]...)
			if _, err := s.Node(n).Exec(ctx, cmd...); err != nil {
				errs[i] = fmt.Errorf("route %s in %s: %w", op, n, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
