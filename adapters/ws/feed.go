package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
)

// feedRole names the feed's Kafka client: its client id and metrics
// label.
const feedRole = "ws-feed"

// errorBackoff is the pause after a poll that brought only errors, so that
// a persistent one is logged every so often rather than in a hot loop.
const errorBackoff = time.Second

// FeedConfig configures a Feed.
type FeedConfig struct {
	// Kafka is how to reach the brokers (required).
	Kafka *kafka.Config
	// Topics are the topics to push, by their contract names; the Kafka
	// namespace is added. Default tms.positions.
	Topics []string
	// Registerer receives the feed's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *FeedConfig) setDefaults() {
	if len(c.Topics) == 0 {
		c.Topics = []string{event.TopicPositions}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *FeedConfig) Validate() error {
	if c.Kafka == nil {
		return errors.New("ws feed: Kafka is required")
	}
	for _, t := range c.Topics {
		if t == "" {
			return errors.New("ws feed: empty topic name")
		}
	}
	return nil
}

// Feed reads events from Kafka and publishes them to a Hub. It is not in
// a consumer group: every API instance serves its own clients and needs
// every event, from the live end of each partition. Nothing is committed;
// a restarted feed starts at the end again, and clients resynchronise
// from their snapshot when they reconnect.
//
// The feed looks the ends up before it reads, and says so (Positioned):
// from then on every event produced reaches the hub. Partitions added to
// a topic later are read after a restart.
type Feed struct {
	cfg        FeedConfig
	hub        *Hub
	log        *slog.Logger
	skipped    *prometheus.CounterVec
	positioned chan struct{}
}

// NewFeed validates cfg and builds a feed into hub.
func NewFeed(cfg FeedConfig, hub *Hub) (*Feed, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hub == nil {
		return nil, errors.New("ws feed: a hub is required")
	}
	f := &Feed{
		cfg:        cfg,
		hub:        hub,
		positioned: make(chan struct{}),
		log:        cfg.Logger.With("component", "ws-feed"),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_ws_feed_records_skipped_total",
			Help: "Records the WebSocket feed could not read and skipped, by reason.",
		}, []string{"reason"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(f.skipped)
	}
	return f, nil
}

// Positioned is closed once the feed knows where the live end of every
// partition is: an event produced after that reaches the hub. Readiness
// checks wait for it.
func (f *Feed) Positioned() <-chan struct{} { return f.positioned }

// Run reads and publishes until ctx ends, then returns nil. Fetch errors
// are logged; franz-go retries what can be retried.
func (f *Feed) Run(ctx context.Context) error {
	ends, err := f.endOffsets(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cl, err := f.cfg.Kafka.NewClient(feedRole, kgo.ConsumePartitions(ends))
	if err != nil {
		return fmt.Errorf("ws feed: %w", err)
	}
	defer cl.Close()
	close(f.positioned)
	outage := f.cfg.Kafka.Health.Outage(feedRole, f.cfg.Kafka)
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		var failed error
		fetches.EachError(func(topic string, partition int32, err error) {
			if failed == nil {
				failed = fmt.Errorf("ws feed: fetch %s[%d]: %w", topic, partition, err)
			}
		})
		if failed != nil && fetches.NumRecords() == 0 {
			outage.Failed(ctx, failed)
			continue
		}
		if failed == nil && fetches.NumRecords() > 0 {
			outage.Recovered()
		}
		fetches.EachRecord(f.publish)
	}
}

// endOffsets looks up the live end of every partition of the feed's
// topics, retrying until the brokers answer or ctx ends.
func (f *Feed) endOffsets(ctx context.Context) (map[string]map[int32]kgo.Offset, error) {
	topics := make([]string, len(f.cfg.Topics))
	for i, t := range f.cfg.Topics {
		topics[i] = f.cfg.Kafka.Topic(t)
	}
	adm, err := f.cfg.Kafka.NewAdmin(feedRole + "-admin")
	if err != nil {
		return nil, fmt.Errorf("ws feed: %w", err)
	}
	defer adm.Close()
	for {
		listed, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			ends := map[string]map[int32]kgo.Offset{}
			listed.Each(func(o kadm.ListedOffset) {
				if ends[o.Topic] == nil {
					ends[o.Topic] = map[int32]kgo.Offset{}
				}
				ends[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
			})
			return ends, nil
		}
		f.log.Warn("looking up the live end of the topics failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(errorBackoff):
		}
	}
}

func (f *Feed) publish(r *kgo.Record) {
	e, err := event.Decode(r.Value)
	if err != nil {
		f.skipped.WithLabelValues("malformed_envelope").Inc()
		f.log.Warn("skipping a record that is not an event",
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	if event.IsCommand(e.Type) {
		return // an API's request to a processor, not something that happened
	}
	// The record's bytes are the envelope as produced: pushed as they are,
	// with any extension attributes, and without encoding them again.
	f.hub.publish(&e, r.Value, r.Timestamp)
}
