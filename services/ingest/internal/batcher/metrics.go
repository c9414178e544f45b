package batcher

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ingest/sluice/services/ingest/protocol"
)

// flushCodes are the codes a flush can fail with; their series exist at 0.
var flushCodes = []string{protocol.CodeUnavailable, protocol.CodeNotReplicated, protocol.CodeQueueFull, protocol.CodeShuttingDown}

type metrics struct {
	received      *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	acked         *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	ackLatency    *prometheus.HistogramVec
	batchSize     prometheus.Histogram

	mu      sync.Mutex
	sources map[string]*Source
}

func newMetrics(reg prometheus.Registerer, inflight *atomic.Int64) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_messages_received_total",
			Help: "Messages (non-empty frames) read from clients, by transport (tcp, http).",
		}, []string{"transport"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_received_bytes_total",
			Help: "Message bytes read from clients (frame content, without delimiters), by transport.",
		}, []string{"transport"}),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_messages_acked_total",
			Help: "Messages stored in Redis (and replicated, if configured) and therefore acknowledged, by transport.",
		}, []string{"transport"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_messages_rejected_total",
			Help: "Messages answered with an error instead of an ack, by transport and error code.",
		}, []string{"transport", "code"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_ingest_ack_latency_seconds",
			Help:    "Time from reading a chunk of messages to their flush outcome (ack or error ready to write), by transport.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 20),
		}, []string{"transport"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_ingest_batch_messages",
			Help:    "Messages per flush (one RPUSH).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
		sources: map[string]*Source{},
	}
	reg.MustRegister(m.received, m.receivedBytes, m.acked, m.rejected, m.ackLatency, m.batchSize,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_ingest_inflight_bytes",
			Help: "Message bytes read but not yet settled (the INGEST_MAX_INFLIGHT_BYTES budget in use).",
		}, func() float64 { return float64(inflight.Load()) }))
	return m
}

// Source is one front end's series, resolved once.
type Source struct {
	received      prometheus.Counter
	receivedBytes prometheus.Counter
	acked         prometheus.Counter
	rejected      *prometheus.CounterVec // curried with the transport
	ackLatency    prometheus.Observer
}

func (m *metrics) source(transport string) *Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sources[transport]; ok {
		return s
	}
	s := &Source{
		received:      m.received.WithLabelValues(transport),
		receivedBytes: m.receivedBytes.WithLabelValues(transport),
		acked:         m.acked.WithLabelValues(transport),
		rejected:      m.rejected.MustCurryWith(prometheus.Labels{"transport": transport}),
		ackLatency:    m.ackLatency.WithLabelValues(transport),
	}
	for _, code := range flushCodes {
		s.rejected.WithLabelValues(code)
	}
	m.sources[transport] = s
	return s
}

// Rejected counts n messages of this source answered with code.
func (s *Source) Rejected(code string, n int) { s.rejected.WithLabelValues(code).Add(float64(n)) }

func (s *Source) settled(n int, f *Failure, latency time.Duration) {
	s.ackLatency.Observe(latency.Seconds())
	if f == nil {
		s.acked.Add(float64(n))
		return
	}
	s.Rejected(f.Code, n)
}
