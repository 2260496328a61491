package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	// InstanceID is a stable identity of this process (a pod or host
	// name). When set, consumer groups use static membership: an instance
	// restarted after a crash takes its partitions back at once, instead of
	// after the session timeout, and without a rebalance. Two live
	// processes must never share one.
	InstanceID string
	// Partitions is the partition count of vehicle-keyed topics created
	// by tms. Default 12: enough to spread over a dozen instances.
	Partitions int32
	// ReplicationFactor of created topics; -1 takes the broker's default.
	ReplicationFactor int16
	// MinInsyncReplicas is the min.insync.replicas of created topics: how
	// many replicas must have a write before it is acknowledged (tms
	// produces with acks=all). Zero leaves the broker's default.
	MinInsyncReplicas int16
	// RetryBackoff is the first wait after a Kafka error a component waits
	// out (an unreachable group coordinator, a transaction that cannot
	// end); it doubles at each further error, up to RetryBackoffMax.
	// Defaults 250ms and 10s.
	RetryBackoff, RetryBackoffMax time.Duration
	// TLS, when set, encrypts every connection to the brokers and checks
	// their certificates against its roots (nil roots: the system's),
	// presenting its client certificate when it has one. Nil: plaintext.
	// franz-go sets the server name of each connection to the broker's
	// host unless ServerName is set.
	TLS *tls.Config
	// SASL, when set, authenticates every connection (inside TLS when TLS
	// is set). Nil: no authentication.
	SASL *SASL
	// Health, when set, is told which components wait for Kafka, for
	// readiness. Shared by every copy of the config.
	Health *Health
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
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 250 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no brokers"))
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("kafka: partitions must be at least 1"))
	}
	if c.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("kafka: the replication factor must be -1 (the broker's default) or at least 1, not %d", c.ReplicationFactor))
	}
	if c.RetryBackoff <= 0 || c.RetryBackoffMax < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("kafka: the retry backoff must be positive and its maximum no less (%s, %s)", c.RetryBackoff, c.RetryBackoffMax))
	}
	if c.MinInsyncReplicas < 0 {
		errs = append(errs, fmt.Errorf("kafka: min.insync.replicas must be 0 (the broker's default) or at least 1, not %d", c.MinInsyncReplicas))
	}
	if c.SASL != nil {
		if err := c.SASL.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ReplicationFactor > 0 && c.MinInsyncReplicas > c.ReplicationFactor {
		errs = append(errs, fmt.Errorf("kafka: min.insync.replicas %d is more than the replication factor %d: no write would ever be acknowledged",
			c.MinInsyncReplicas, c.ReplicationFactor))
	}
	return errors.Join(errs...)
}

// Options returns the client options every tms client shares, named by
// role (used as the client id and the metrics label): every Kafka client
// of tms is built from them, so each gets the connection's TLS and SASL. The producer
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
		kgo.WithLogger(kslog.New(slog.New(warnAndAbove{c.Logger.Handler()}).With("component", "kafka", "client", role))),
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if c.SASL != nil {
		opts = append(opts, kgo.SASL(c.SASL.mechanism()))
	}
	if c.Registerer != nil {
		m := kprom.NewMetrics("tms_kafka",
			kprom.Registerer(prometheus.WrapRegistererWith(prometheus.Labels{"client": role}, c.Registerer)))
		opts = append(opts, kgo.WithHooks(m))
	}
	return opts
}

// GroupOptions returns the options of a consumer group member: the group
// (namespaced) and, with an InstanceID, its static membership.
func (c *Config) GroupOptions(group string) []kgo.Opt { return c.MemberOptions(group, 0) }

// MemberOptions are GroupOptions for the member-th of several members of
// group in this process (from 0; member 0 is GroupOptions'): each needs a
// static identity of its own.
func (c *Config) MemberOptions(group string, member int) []kgo.Opt {
	opts := []kgo.Opt{kgo.ConsumerGroup(c.Group(group))}
	if c.InstanceID != "" {
		id := c.InstanceID + "/" + group
		if member > 0 {
			id += "/" + strconv.Itoa(member)
		}
		opts = append(opts, kgo.InstanceID(id))
	}
	return opts
}

// NewClient builds a long-lived client with the shared options plus
// extra, its metrics labelled with role: one such client per role and
// process.
func (c *Config) NewClient(role string, extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(c.Options(role), extra...)...)
}

// NewTransientClient builds a client for a short task (a restore, a
// replay, an admin request) with the shared options plus extra, and no
// client metrics: several may run at once under one role name, and each
// would otherwise register the same metrics again.
func (c *Config) NewTransientClient(role string, extra ...kgo.Opt) (*kgo.Client, error) {
	quiet := *c
	quiet.Registerer = nil
	return kgo.NewClient(append(quiet.Options(role), extra...)...)
}

// NewAdmin builds an admin client for a short task; close it with Close.
func (c *Config) NewAdmin(role string) (*kadm.Client, error) {
	cl, err := c.NewTransientClient(role)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// warnAndAbove passes on only warnings and errors: franz-go narrates every
// metadata refresh and group step at info, which drowns tms's own logs.
type warnAndAbove struct{ slog.Handler }

func (h warnAndAbove) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

// Handle drops franz-go's "unable to initialize sasl", which it logs at
// every refused attempt: the refusal reaches the component that made the
// request, whose Outage logs it once, naming the user (Outage.explain).
func (h warnAndAbove) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "unable to initialize sasl" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnAndAbove) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnAndAbove{h.Handler.WithAttrs(attrs)}
}

func (h warnAndAbove) WithGroup(name string) slog.Handler {
	return warnAndAbove{h.Handler.WithGroup(name)}
}
