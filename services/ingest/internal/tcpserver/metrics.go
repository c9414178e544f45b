package tcpserver

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// closeReasons label sluice_ingest_connections_closed_total; their series
// exist at 0.
var closeReasons = []string{
	"eof", "read_error", "write_error", "killed",
	protocol.CodeFrameTooLarge, protocol.CodeUnavailable, protocol.CodeNotReplicated, protocol.CodeQueueFull,
	protocol.CodeShuttingDown, protocol.CodeTooManyConnections, protocol.CodeIdleTimeout, protocol.CodeFrameTimeout,
}

type metrics struct {
	closed *prometheus.CounterVec
	held   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, nconns *atomic.Int64) *metrics {
	m := &metrics{
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_connections_closed_total",
			Help: "TCP client connections closed, by reason (eof, an error code, read_error, write_error, killed at the shutdown deadline).",
		}, []string{"reason"}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_acks_held_total",
			Help: "Times a connection's acks were held back because its client left earlier ones unread (a sender that never reads belongs on the no-ack port).",
		}),
	}
	for _, r := range closeReasons {
		m.closed.WithLabelValues(r)
	}
	reg.MustRegister(m.closed, m.held,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_ingest_connections",
			Help: "Open TCP client connections.",
		}, func() float64 { return float64(nconns.Load()) }),
	)
	return m
}
