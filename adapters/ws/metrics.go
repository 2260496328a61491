package ws

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	clients    prometheus.Gauge
	framesSent [numKinds]prometheus.Counter
	coalesced  prometheus.Counter
	dropped    prometheus.Counter
	closedSlow prometheus.Counter
	published  prometheus.Counter
	latency    prometheus.Histogram
	refusals   *prometheus.CounterVec
	// Replays: running, started, refused by the limit that refused them.
	replays        prometheus.Gauge
	replaysStarted prometheus.Counter
	replaysRefused *prometheus.CounterVec
}

// newMetrics builds the hub's metrics; peakHeld is read for
// tms_ws_client_held_bytes_peak.
func newMetrics(reg prometheus.Registerer, peakHeld *atomic.Int64) *metrics {
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tms_ws_frames_sent_total",
		Help: "Frames written to WebSocket clients, by frame type (subscribed, snapshot, event, error, " +
			"replay_started, replay, replay_state, replay_ended).",
	}, []string{"type"})
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tms_ws_clients", Help: "Connected WebSocket clients.",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ws_frames_coalesced_total",
			Help: "Position frames not sent because a newer position of the same vehicle replaced them in a slow client's outbox.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ws_frames_dropped_total",
			Help: "Frames discarded unsent: the outbox of clients closed as too slow.",
		}),
		closedSlow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ws_clients_closed_slow_total",
			Help: "WebSocket clients closed with 1013 because what the hub held for them passed its frame or byte limit.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ws_events_published_total", Help: "Events given to the hub to fan out.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tms_ws_push_latency_seconds",
			Help: "From tms receiving an event (a position's MQTT receipt, else its Kafka record time) " +
				"to its frame being written to a WebSocket client.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. ~33s
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ws_upgrades_refused_total",
			Help: "WebSocket upgrades refused before upgrading, by reason " +
				"(unauthorised, origin, caller_connections, connections).",
		}, []string{"reason"}),
		replays: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tms_ws_replays", Help: "WebSocket replays running.",
		}),
		replaysStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_ws_replays_started_total", Help: "WebSocket replays started.",
		}),
		replaysRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ws_replays_refused_total",
			Help: "WebSocket replays refused at a limit, by limit (connection, caller, total).",
		}, []string{"limit"}),
	}
	peak := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tms_ws_client_held_bytes_peak",
		Help: "The most bytes the hub has held for one WebSocket client (queued and being written) since it started; " +
			"the byte limit per client bounds it.",
	}, func() float64 { return float64(peakHeld.Load()) })
	for k, name := range kindNames {
		m.framesSent[k] = sent.WithLabelValues(name)
	}
	if reg != nil {
		reg.MustRegister(m.clients, sent, m.coalesced, m.dropped, m.closedSlow, m.published, m.latency, m.refusals, peak,
			m.replays, m.replaysStarted, m.replaysRefused)
	}
	return m
}

// frameSent counts a written frame and, for an event, its latency.
func (m *metrics) frameSent(k frameKind, origin time.Time) {
	m.framesSent[k].Inc()
	if k == kindEvent && !origin.IsZero() {
		// Clocks of different hosts may disagree by a little; a negative
		// latency is one of those, not a time machine.
		m.latency.Observe(max(0, time.Since(origin).Seconds()))
	}
}

// refused counts an upgrade refused for r.
func (m *metrics) refused(r refusal) { m.refusals.WithLabelValues(string(r)).Inc() }

// replayRefused counts a replay refused at limit.
func (m *metrics) replayRefused(limit string) { m.replaysRefused.WithLabelValues(limit).Inc() }
