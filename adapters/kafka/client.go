package kafka

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Config says how to reach Kafka and how to create topics.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Namespace, when set, prefixes every topic and consumer group name
	// ("<namespace>.tms.positions"), so that independent deployments, or
	// tests, can share one cluster. Empty for the contract's own names.
	Namespace string
	// Partitions is the partition count of vehicle-keyed topics created
	// by tms. Default 12: enough to spread over a dozen instances.
	Partitions int32
	// ReplicationFactor of created topics; -1 takes the broker's default.
	ReplicationFactor int16
	// Logger receives the client's warnings and errors. Default: slog's.
	Logger *slog.Logger
	// Registerer receives the client metrics (connections, bytes,
	// buffered records). Nil means no client metrics.
	Registerer prometheus.Registerer
}

// Topic returns the name of topic in this config's namespace.
func (c *Config) Topic(topic string) string {
	if c.Namespace == "" {
		return topic
	}
	return c.Namespace + "." + topic
}

// Group returns the name of consumer group in this config's namespace.
func (c *Config) Group(group string) string { return c.Topic(group) }

// SetDefaults fills in unset fields.
func (c *Config) SetDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers")
	}
	if c.Partitions < 1 {
		return errors.New("kafka: partitions must be at least 1")
	}
	return nil
}

// Options returns the client options every tms client shares, named by
// role (used as the client id and the metrics label). The producer
// settings are tms's delivery guarantee: idempotent writes (franz-go's
// default, never disabled here) acknowledged by all in-sync replicas.
// Consumers read only committed records, so aborted transactional output
// is never seen.
func (c *Config) Options(role string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID("tms-" + role),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.WithLogger(kslog.New(c.Logger.With("component", "kafka", "client", role))),
	}
	if c.Registerer != nil {
		m := kprom.NewMetrics("tms_kafka",
			kprom.Registerer(prometheus.WrapRegistererWith(prometheus.Labels{"client": role}, c.Registerer)))
		opts = append(opts, kgo.WithHooks(m))
	}
	return opts
}

// NewClient builds a client with the shared options plus extra.
func (c *Config) NewClient(role string, extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(c.Options(role), extra...)...)
}

// NewAdmin builds an admin client; close it with Close.
func (c *Config) NewAdmin(role string) (*kadm.Client, error) {
	cl, err := c.NewClient(role)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}
