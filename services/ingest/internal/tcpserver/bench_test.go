package tcpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/services/ingest/internal/batcher"
	"github.com/sluice-ingest/sluice/services/ingest/internal/store"
	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// sinkPusher stands in for Redis in the batcher benchmark: it encodes
// nothing and stores nothing, so the benchmark measures the server's own
// path (socket read, decode, copy into the batch, flush bookkeeping, acks).
type sinkPusher struct{ n *atomic.Int64 }

func (p sinkPusher) Push(_ context.Context, vals []any, _ time.Time) error {
	for _, v := range vals {
		b, _ := v.(*store.Arg).MarshalBinary()
		p.n.Add(int64(len(b)))
	}
	return nil
}
func (sinkPusher) Close() error { return nil }

// BenchmarkBatcher streams b.N messages of 100 bytes over real loopback
// connections through decoder, lanes and acks. allocs/op is per message.
func BenchmarkBatcher(b *testing.B) {
	for _, conns := range []int{1, 16} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			var stored atomic.Int64
			o := testOptions()
			o.BatchMax = 1024
			o.Lanes = 4
			o.MaxInflightBytes = 16 << 20
			log := slog.New(slog.NewJSONHandler(io.Discard, nil))
			ctx, cancel := context.WithCancel(context.Background())
			srv, _, done, err := startTCP(ctx, o, func() batcher.Pusher { return sinkPusher{&stored} }, log, prometheus.NewRegistry())
			if err != nil {
				cancel()
				b.Fatal(err)
			}
			defer func() { cancel(); <-done }()

			line := make([]byte, 101)
			for i := range line {
				line[i] = 'a' + byte(i%26)
			}
			line[100] = '\n'
			chunk := make([]byte, 0, 64<<10)
			for len(chunk)+len(line) <= cap(chunk) {
				chunk = append(chunk, line...)
			}
			perChunk := len(chunk) / len(line)

			ncs := make([]net.Conn, conns)
			for i := range ncs {
				nc, err := net.Dial("tcp", srv.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				ncs[i] = nc
			}
			per := b.N / conns
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, nc := range ncs {
				n := per
				if i == 0 {
					n += b.N - per*conns
				}
				if n == 0 {
					continue
				}
				wg.Go(func() {
					go func() {
						for left := n; left > 0; {
							k := min(left, perChunk)
							if _, err := nc.Write(chunk[:k*len(line)]); err != nil {
								return
							}
							left -= k
						}
					}()
					r := bufio.NewReader(nc)
					for {
						l, err := r.ReadSlice('\n')
						if err != nil {
							b.Error(err)
							return
						}
						rep, err := protocol.ParseReply(l)
						if err != nil || !rep.OK() {
							b.Errorf("reply %q: %v", l, err)
							return
						}
						if rep.N == uint64(n) {
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
		})
	}
}
