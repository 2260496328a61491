package commandlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
)

// Config configures a Log. Every field is required.
type Config struct {
	// Kafka is how to reach the brokers; Topic is in its namespace.
	Kafka *kafka.Config
	// Pool is the read model's Postgres: its projector's offsets, and the
	// advisory locks.
	Pool *pgxpool.Pool
	// Topic is the contract name of the topic commands are appended to
	// (event.TopicJobs).
	Topic string
	// Projector names the projector of the read model commands are
	// decided on (jobs.ProjectionName): its stored offsets say how far
	// it has applied Topic.
	Projector string
	// Role names the producer (its client id, "tms-<Role>", and metrics
	// label) and the advisory locks' space, "tms.<Role>".
	Role string
	// Subject and ReadModel word the errors: what one command is about
	// ("job") and the read model ("jobs").
	Subject, ReadModel string
	// DecideTimeout bounds Decide's wait for the read model and the lock.
	DecideTimeout time.Duration
	// ProduceTimeout bounds Append.
	ProduceTimeout time.Duration
	// Unavailable is the error Decide wraps when it could not decide
	// within DecideTimeout (the handler's ErrUnavailable).
	Unavailable error
}

// Validate reports a config that cannot work: every problem, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Kafka == nil || c.Pool == nil || c.Unavailable == nil {
		errs = append(errs, errors.New("commandlog: Kafka, Pool and Unavailable are required"))
	}
	if c.Topic == "" || c.Projector == "" || c.Role == "" || c.Subject == "" || c.ReadModel == "" {
		errs = append(errs, errors.New("commandlog: Topic, Projector, Role, Subject and ReadModel are required"))
	}
	if c.DecideTimeout <= 0 || c.ProduceTimeout <= 0 {
		errs = append(errs, errors.New("commandlog: timeouts must be positive"))
	}
	return errors.Join(errs...)
}

// Log is a command topic and the read model projected from it. It is safe
// for concurrent use.
type Log struct {
	cfg      Config
	topic    string // namespaced
	producer *kgo.Client
	admin    *kadm.Client
	offsets  postgres.Offsets
}

// New validates cfg and connects a producer (acks from all in-sync
// replicas, idempotent). Close it with Close.
func New(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl, err := cfg.Kafka.NewClient(cfg.Role)
	if err != nil {
		return nil, fmt.Errorf("commandlog: %w", err)
	}
	return &Log{cfg: cfg, topic: cfg.Kafka.Topic(cfg.Topic), producer: cl, admin: kadm.NewClient(cl),
		offsets: postgres.Offsets{Projector: cfg.Projector}}, nil
}

// Close closes the Kafka client; call it once no command is running.
func (l *Log) Close() { l.producer.Close() }

// Append appends e to the topic, keyed by key. Once a command is decided
// it is appended whether or not the client waits for the answer, so the
// produce runs on a context of its own, bounded by ProduceTimeout.
func (l *Log) Append(ctx context.Context, key string, e event.Envelope) error {
	value, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("commandlog: encode %s: %w", e.Type, err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.ProduceTimeout)
	defer cancel()
	r := &kgo.Record{
		Topic: l.topic, Key: []byte(key), Value: value,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}},
	}
	if err := l.producer.ProduceSync(pctx, r).FirstErr(); err != nil {
		return fmt.Errorf("commandlog: produce %s to %s, keyed %s: %w", e.Type, l.topic, key, err)
	}
	return nil
}

// Ends returns where the topic ends now for a read_committed reader (its
// last stable offsets), by partition.
func (l *Log) Ends(ctx context.Context) (map[int32]int64, error) {
	ends, err := l.admin.ListCommittedOffsets(ctx, l.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", l.topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// CaughtUp reports whether the read model's projector, as q sees it, has
// applied every record below ends.
func (l *Log) CaughtUp(ctx context.Context, q postgres.Querier, ends map[int32]int64) (bool, error) {
	partitions := make([]int32, 0, len(ends))
	for p := range ends {
		partitions = append(partitions, p)
	}
	next, err := l.offsets.Read(ctx, q, l.topic, partitions)
	if err != nil {
		return false, err
	}
	for p, end := range ends {
		if max(next[p], 0) < end {
			return false, nil
		}
	}
	return true, nil
}

// Decide runs decision under the lock of id, in the transaction tx that
// holds it, on a read model that has caught up with the topic, and
// returns what decision returns (a decision appends its command before
// it returns, so that the lock covers it). lockCtx is the context of the
// wait, which ends after DecideTimeout. Waiting for the read model and for
// the lock happens without holding a connection.
func (l *Log) Decide(ctx context.Context, id string, decision func(lockCtx context.Context, tx pgx.Tx) error) error {
	lockCtx, cancel := context.WithTimeout(ctx, l.cfg.DecideTimeout)
	defer cancel()
	pause := time.Millisecond
	var why error // what held the command up last, for the error at the deadline
	for {
		ends, err := l.Ends(lockCtx)
		if err == nil {
			err = Poll(lockCtx, 10*time.Millisecond, func() (bool, error) { return l.CaughtUp(lockCtx, l.cfg.Pool, ends) })
			if err != nil {
				return l.Unavailable(lockCtx, ctx, fmt.Sprintf("waiting for the %s read model to catch up with %s", l.cfg.ReadModel, l.cfg.Topic), err)
			}
			held, err := l.tryDecide(lockCtx, ctx, id, decision)
			if held || err != nil {
				return err
			}
			why = fmt.Errorf("the %s's lock was held, or %s moved on, at every try", l.cfg.Subject, l.cfg.Topic)
		} else {
			// Kafka not answering, or a topic just created and not yet
			// known everywhere: retriable until the deadline.
			why = err
		}
		// Wait a little (jittered, so that waiters do not retry in step)
		// and try again.
		select {
		case <-lockCtx.Done():
			return l.Unavailable(lockCtx, ctx, fmt.Sprintf("deciding (%v)", why), lockCtx.Err())
		case <-time.After(pause + rand.N(pause)):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// tryDecide takes the lock of id if it is free (held false if not),
// checks that the read model is still caught up with the topic (held
// false if not), and runs decision before releasing the lock.
func (l *Log) tryDecide(lockCtx, ctx context.Context, id string, decision func(context.Context, pgx.Tx) error) (held bool, err error) {
	tx, err := l.cfg.Pool.Begin(lockCtx)
	if err != nil {
		return false, l.Unavailable(lockCtx, ctx, "begin", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // releases the lock
	var locked bool
	err = tx.QueryRow(lockCtx, `SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2))`, "tms."+l.cfg.Role, id).Scan(&locked)
	if err != nil || !locked {
		return false, l.Unavailable(lockCtx, ctx, fmt.Sprintf("taking the %s's lock", l.cfg.Subject), err)
	}
	ends, err := l.Ends(lockCtx)
	if err != nil {
		return false, nil // retried, as before the lock
	}
	if ok, err := l.CaughtUp(lockCtx, tx, ends); err != nil || !ok {
		return false, l.Unavailable(lockCtx, ctx, fmt.Sprintf("reading the %s projection's offsets", l.cfg.ReadModel), err)
	}
	return true, decision(lockCtx, tx)
}

// Unavailable wraps a failure of what, a step of deciding a command
// within lockCtx (Decide's) for a client waiting on ctx: nil for none;
// the Unavailable error when lockCtx's deadline passed (and the client
// still waits); the error itself otherwise.
func (l *Log) Unavailable(lockCtx, ctx context.Context, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case lockCtx.Err() != nil && ctx.Err() == nil:
		return fmt.Errorf("%w: %s took longer than %s", l.cfg.Unavailable, what, l.cfg.DecideTimeout)
	}
	return fmt.Errorf("commandlog: %s: %w", what, err)
}
