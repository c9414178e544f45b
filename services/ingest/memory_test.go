package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// TestPartialFramesMemory: 1,000 connections each trickle a 900 KiB
// partial frame (under the 1 MiB frame limit, never completed). The read
// buffers they may hold are bounded by INGEST_MAX_BUFFER_BYTES, the frame
// deadline cuts them, and the ingest's peak RSS stays within the two
// budgets plus a fixed overhead per connection and per process. A normal
// client is acked afterwards.
func TestPartialFramesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const (
		inflight = 16 << 20
		buffers  = 32 << 20
		conns    = 1000
		frame    = 900 << 10
	)
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	in := ingesttest.Start(t, r.Addr,
		ingesttest.WithEnv("INGEST_MAX_INFLIGHT_BYTES", fmt.Sprint(inflight)),
		ingesttest.WithEnv("INGEST_MAX_BUFFER_BYTES", fmt.Sprint(buffers)),
		ingesttest.WithEnv("INGEST_FRAME_TIMEOUT", "5s"),
		ingesttest.WithEnv("INGEST_WRITE_TIMEOUT", "1s"))

	stopSampling := in.SamplePeakRSS(50 * time.Millisecond)

	chunk := bytes.Repeat([]byte("p"), 64<<10)
	var wg sync.WaitGroup
	var cut, dialed atomic.Int64
	for range conns {
		wg.Go(func() {
			nc, err := net.DialTimeout("tcp", in.DataAddr(), 10*time.Second)
			if err != nil {
				return
			}
			dialed.Add(1)
			defer nc.Close()
			// Trickle: 64 KiB every 100 ms, for as long as the server reads.
			go func() {
				for sent := 0; sent < frame; sent += len(chunk) {
					_ = nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
					if _, err := nc.Write(chunk[:min(len(chunk), frame-sent)]); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			_ = nc.SetReadDeadline(time.Now().Add(time.Minute))
			got, err := io.ReadAll(nc)
			if strings.Contains(string(got), "FRAME_TIMEOUT") {
				cut.Add(1)
			} else {
				t.Logf("not cut: got %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	peak := stopSampling()
	if _, hwm, err := in.Memory(); err == nil {
		peak = max(peak, hwm) // the kernel's high-water mark catches what sampling missed
	}
	limit := int64(inflight+buffers) + conns*32<<10 + 64<<20
	t.Logf("%d connections dialed, %d cut by FRAME_TIMEOUT; ingest peak RSS %.1f MiB (limit %.1f MiB: budgets %d + %d MiB, 32 KiB per connection, 64 MiB fixed)",
		dialed.Load(), cut.Load(), mib(peak), mib(limit), inflight>>20, buffers>>20)
	if dialed.Load() != conns || cut.Load() != conns {
		t.Errorf("%d of %d connections dialed, %d cut by FRAME_TIMEOUT; want all", dialed.Load(), conns, cut.Load())
	}
	if peak > limit {
		t.Errorf("ingest peak RSS %.1f MiB, want at most %.1f MiB", mib(peak), mib(limit))
	}

	nc, err := net.DialTimeout("tcp", in.DataAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "after-1\nafter-2\n")
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 16)
	n, err := nc.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "OK ") {
		t.Fatalf("a normal client after the partial frames: %q %v", buf[:n], err)
	}
	// The cut connections give their buffers back once closed (after the
	// close linger, at most 2 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := in.Metrics(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		used := m["sluice_ingest_read_buffer_bytes"]
		if used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice_ingest_read_buffer_bytes = %v 30 s after every partial frame was cut", used)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
