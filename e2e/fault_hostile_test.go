//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

const (
	idleConns       = 5000
	hostilePhase    = 12 * time.Second
	memoryBoundMiB  = 512 // per ingest container; the baseline is a few tens of MiB
	defaultMaxFrame = 1 << 20
	// halfOpenPeer opens the half-open connections: it has bash and
	// NET_ADMIN, and never talks to HAProxy otherwise.
	halfOpenPeer = "sentinel-3"
)

// 10: hostile clients while the normal load runs: 5,000 idle connections,
// frames just over the size limit, random bytes, clients that never read
// their acks, and half-open connections. Every ingest container must stay
// ready, its memory bounded, and the normal clients lose nothing.
func hostileClients(f *faultRun) error {
	if err := raiseNoFile(idleConns + 2000); err != nil {
		return err
	}
	// Resolved once: HAProxy is not restarted here, and thousands of Docker
	// inspect calls would load the daemon that also proxies the connections.
	// The hostile clients dial HAProxy's address on the stack network when
	// the host can reach it: 5,000 extra sessions through Docker's userland
	// port proxy make it stop listening, which tests Docker, not sluice.
	haddr := haproxyAddr(f.s)()
	if ip, err := f.s.Node("haproxy").IP(f.ctx); err == nil {
		direct := net.JoinHostPort(ip, "9501")
		if c, err := net.DialTimeout("tcp", direct, time.Second); err == nil {
			c.Close()
			haddr = direct
		}
	}
	f.note("hostile clients dial %s", haddr)
	addr := func() string { return haddr }
	var dialErr atomic.Value
	maxFrame := defaultMaxFrame
	if v, ok := ingestEnv(f.ctx, f.s, "INGEST_MAX_FRAME_BYTES"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			maxFrame = n
		}
	}
	base := map[string]uint64{}
	for _, n := range f.s.Ingest.Names() {
		base[n], _ = containerMemory(f.ctx, f.s, n)
	}

	ctx, cancel := context.WithTimeout(f.ctx, hostilePhase+30*time.Second)
	defer cancel()
	phaseEnd := time.Now().Add(hostilePhase)
	f.markFault()

	var (
		wg                                   sync.WaitGroup
		mu                                   sync.Mutex
		conns                                []net.Conn
		idleOK, idleFail                     atomic.Int64
		tooLarge, tooLargeOther              atomic.Int64
		randomSent, noReadSent, halfClosedOK atomic.Int64
		halfClosedFail                       atomic.Int64
	)
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	dial := func() (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr())
		if err != nil {
			dialErr.Store(err.Error())
		}
		return c, err
	}
	// 5,000 idle connections (and a partial frame, never finished, on every tenth).
	wg.Add(1)
	go func() {
		defer wg.Done()
		sem := make(chan struct{}, 20)
		var inner sync.WaitGroup
		for i := 0; i < idleConns && ctx.Err() == nil; i++ {
			sem <- struct{}{}
			inner.Add(1)
			go func() {
				defer inner.Done()
				defer func() { <-sem }()
				c, err := dial()
				if err != nil {
					idleFail.Add(1)
					return
				}
				if i%10 == 0 {
					// Half-open in the protocol sense: a frame begun and abandoned.
					_, _ = fmt.Fprintf(c, "hostile-partial-%d-", i)
				}
				idleOK.Add(1)
				keep(c)
			}()
		}
		inner.Wait()
	}()
	// Frames just over the size limit: the answer must be FRAME_TOO_LARGE.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			frame := append([]byte(strings.Repeat("H", maxFrame+1)), '\n')
			for i := 0; i < 3 && time.Now().Before(phaseEnd); i++ {
				c, err := dial()
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(15 * time.Second))
				_, _ = c.Write(frame)
				line, _ := bufio.NewReader(c).ReadString('\n')
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "ERR" && f[2] == "FRAME_TOO_LARGE" {
					tooLarge.Add(1)
				} else {
					tooLargeOther.Add(1)
				}
				c.Close()
			}
		}()
	}
	// Random bytes (they hold newlines, so part of them is stored as frames).
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for i := 0; i < 4 && time.Now().Before(phaseEnd); i++ {
				c, err := dial()
				if err != nil {
					continue
				}
				go func() { _, _ = io.Copy(io.Discard, c) }()
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				for j := 0; j < 8; j++ {
					_, _ = rand.Read(buf)
					if _, err := c.Write(buf); err != nil {
						break
					}
					randomSent.Add(int64(len(buf)))
				}
				sleepCtx(ctx, time.Second)
				c.Close()
			}
		}()
	}
	// Clients that send but never read their acks.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				return
			}
			keep(c)
			var b strings.Builder
			for seq := 0; seq < 40_000 && time.Now().Before(phaseEnd); seq++ {
				fmt.Fprintf(&b, "hostile-noread-%d-%d-%s\n", w, seq, strings.Repeat("n", 100))
				if seq%1000 == 999 {
					_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.WriteString(c, b.String()); err != nil {
						return
					}
					noReadSent.Add(1000)
					b.Reset()
				}
			}
		}()
	}
	// Half-open connections in the TCP sense: sentinel-3 (which never talks to
	// HAProxy) opens connections to HAProxy, starts a frame on each, and then
	// its packets to HAProxy are blackholed, so its FIN never arrives: HAProxy
	// and ingest keep sessions whose peer has vanished.
	var halfOpen atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		const script = `n=0; for i in $(seq 1 50); do exec {fd}<>/dev/tcp/haproxy/9501 && printf 'hostile-halfopen-%d-' "$i" >&$fd && n=$((n+1)); done; echo "opened $n"; sleep 6`
		out, err := f.s.Node(halfOpenPeer).Exec(ctx, "bash", "-c", script)
		if err != nil {
			halfOpen.Store("half-open peer: " + err.Error())
			return
		}
		halfOpen.Store(strings.TrimSpace(out))
	}()
	var unblackhole func(context.Context) error
	if hip, err := f.s.Node("haproxy").IP(ctx); err == nil {
		sleepCtx(ctx, 3*time.Second) // let the peer open its connections first
		if _, err := f.s.Node(halfOpenPeer).Exec(ctx, "ip", "route", "add", "blackhole", hip+"/32"); err == nil {
			unblackhole = func(ctx context.Context) error {
				_, err := f.s.Node(halfOpenPeer).Exec(ctx, "ip", "route", "del", "blackhole", hip+"/32")
				return err
			}
		} else {
			f.fail("blackhole HAProxy in %s: %v", halfOpenPeer, err)
		}
	}
	// Half-closed connections: send 10 messages, shut down the write side,
	// and read until the server closes. The acks must still arrive.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100 && time.Now().Before(phaseEnd); i++ {
			c, err := dial()
			if err != nil {
				halfClosedFail.Add(1)
				continue
			}
			for j := 0; j < 10; j++ {
				fmt.Fprintf(c, "hostile-halfclose-%d-%d\n", i, j)
			}
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(c)
			if strings.Contains(string(got), "OK 10\n") {
				halfClosedOK.Add(1)
			} else {
				halfClosedFail.Add(1)
			}
			c.Close()
		}
	}()

	// Watch readiness and memory while the hostile clients run.
	notReady := map[string]int{}
	unanswered := map[string]int{}
	maxMem := map[string]uint64{}
	metrics := map[string]float64{}
	hc := &http.Client{Timeout: 2 * time.Second}
	samples := 0
	for time.Now().Before(phaseEnd) && ctx.Err() == nil {
		samples++
		for _, n := range f.s.Ingest.Names() {
			switch code, err := readyStatus(ctx, f.s, hc, n); {
			case err != nil:
				// No answer within 2 s on a loaded 2-core host is reported,
				// not failed: readiness is what the service says it is.
				unanswered[n]++
			case code != http.StatusOK:
				notReady[n]++
			}
			scrapeMax(ctx, f.s, hc, n, metrics)
			if m := uint64(metrics[n+" process_resident_memory_bytes"]); m > maxMem[n] {
				maxMem[n] = m
			}
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	wg.Wait()
	if unblackhole != nil {
		if err := unblackhole(f.ctx); err != nil {
			f.fail("remove the blackhole route in %s: %v", halfOpenPeer, err)
		}
	}
	if v, ok := halfOpen.Load().(string); ok {
		f.note("half-open peer %s: %s, then its packets to HAProxy were dropped", halfOpenPeer, v)
		if !strings.HasPrefix(v, "opened ") || v == "opened 0" {
			f.fail("half-open connections were not opened: %s", v)
		}
	}
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	f.markHeal()
	after := map[string]uint64{}
	for _, n := range f.s.Ingest.Names() {
		after[n], _ = containerMemory(f.ctx, f.s, n)
	}
	if e, ok := dialErr.Load().(string); ok {
		f.note("hostile: last dial error: %s", e)
	}

	f.note("hostile: %d idle connections open (%d failed), FRAME_TOO_LARGE %d (other answer %d), %d KiB random bytes, %d never-read messages, half-closed acked %d (not %d)",
		idleOK.Load(), idleFail.Load(), tooLarge.Load(), tooLargeOther.Load(), randomSent.Load()>>10, noReadSent.Load(), halfClosedOK.Load(), halfClosedFail.Load())
	for _, n := range f.s.Ingest.Names() {
		f.note("%s: container memory %d MiB before, %d MiB after; max RSS %d MiB during; /ready not 200 in %d and unanswered in %d of %d samples",
			n, base[n]>>20, after[n]>>20, maxMem[n]>>20, notReady[n], unanswered[n], samples)
		if notReady[n] > 0 {
			f.fail("%s answered /ready with a non-200 status in %d of %d samples under hostile clients", n, notReady[n], samples)
		}
		if maxMem[n] == 0 {
			f.fail("%s: no process_resident_memory_bytes sample from /metrics", n)
		}
		if maxMem[n] > memoryBoundMiB<<20 {
			f.fail("%s used %d MiB under hostile clients (bound %d MiB)", n, maxMem[n]>>20, memoryBoundMiB)
		}
	}
	keys := make([]string, 0, len(metrics))
	for k := range metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(k, "closed_total") {
			continue // cumulative over the whole stack, not this scenario
		}
		f.note("max %s = %.0f", k, metrics[k])
	}
	if tooLarge.Load() == 0 {
		f.fail("no oversized frame was answered with FRAME_TOO_LARGE (%d other answers)", tooLargeOther.Load())
	}
	if idleOK.Load() < idleConns*9/10 {
		f.fail("only %d of %d idle connections could be opened", idleOK.Load(), idleConns)
	}
	return nil
}

func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	if lim.Max < n {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is below the %d the hostile scenario needs", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}

// containerMemory is the container's memory use as `docker stats` shows it.
func containerMemory(ctx context.Context, s *Stack, name string) (uint64, error) {
	res, err := s.Containers.Client().ContainerStats(ctx, s.Node(name).ID(), client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return 0, err
	}
	return st.MemoryStats.Usage, nil
}

// readyStatus is the status code of an ingest container's /ready (one retry
// when the request itself fails).
func readyStatus(ctx context.Context, s *Stack, hc *http.Client, name string) (int, error) {
	var last error
	for range 2 {
		base, err := s.Ingest.AdminURL(ctx, name)
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ready", nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	return 0, last
}

// scrapeMax keeps the maximum of the memory and in-flight gauges an ingest
// container exports.
func scrapeMax(ctx context.Context, s *Stack, hc *http.Client, name string, max map[string]float64) {
	base, err := s.Ingest.AdminURL(ctx, name)
	if err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return
	}
	resp, err := hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "process_resident_memory_bytes") && !strings.Contains(line, "inflight") &&
			!strings.Contains(line, "connections") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		key := name + " " + fields[0]
		if v > max[key] {
			max[key] = v
		}
	}
}
