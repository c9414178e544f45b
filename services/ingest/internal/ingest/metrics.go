package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received      prometheus.Counter
	receivedBytes prometheus.Counter
	acked         prometheus.Counter
	rejected      *prometheus.CounterVec
	closed        *prometheus.CounterVec
	batchSize     prometheus.Histogram
	ackLatency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_messages_received_total",
			Help: "Messages (non-empty frames) read from clients.",
		}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_received_bytes_total",
			Help: "Message bytes read from clients (frame content, without delimiters).",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ingest_messages_acked_total",
			Help: "Messages stored in Redis (and replicated, if configured) and therefore acknowledged.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_messages_rejected_total",
			Help: "Messages answered with an error instead of an ack, by error code.",
		}, []string{"code"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_connections_closed_total",
			Help: "Client connections closed, by reason (eof, an error code, write_error, read_error).",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_ingest_batch_messages",
			Help:    "Messages per flush (one RPUSH).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_ingest_ack_latency_seconds",
			Help:    "Time from reading a chunk of messages to their flush outcome (ack or error ready to write).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 20),
		}),
	}
	reg.MustRegister(m.received, m.receivedBytes, m.acked, m.rejected, m.closed, m.batchSize, m.ackLatency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_ingest_connections",
			Help: "Open client connections.",
		}, func() float64 { return float64(s.nconns.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_ingest_inflight_bytes",
			Help: "Message bytes read but not yet settled (the INGEST_MAX_INFLIGHT_BYTES budget in use).",
		}, func() float64 { return float64(s.inflight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_ingest_draining",
			Help: "1 while the server drains after SIGTERM.",
		}, func() float64 {
			if s.draining.Load() {
				return 1
			}
			return 0
		}),
	)
	return m
}
