package jobcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/jobs"
)

// ErrUnavailable: the command could not be decided in time, because the
// jobs read model is behind tms.jobs or another command on the same job
// held it up. Nothing was appended; the client may retry.
var ErrUnavailable = errors.New("job commands are unavailable")

// Config configures the job commands.
type Config struct {
	// Kafka is how to reach the brokers; commands go to tms.jobs in its
	// namespace.
	Kafka *kafka.Config
	// Pool is the read models' Postgres: the stations, vehicles and jobs
	// tables, the jobs projection's offsets, and the advisory locks.
	Pool *pgxpool.Pool
	// DecideTimeout bounds the wait before deciding a command of a job
	// id (a create with an external reference, a cancellation): for the
	// jobs read model to catch up with tms.jobs and for the job's lock
	// (then ErrUnavailable). Default 5 s.
	DecideTimeout time.Duration
	// Timeout bounds the wait for the read model to show what the
	// command did, after appending it (then the result is Accepted). It
	// must exceed the job processor's decision delay (8 s by default),
	// after which the processor applies a command. Default 20 s.
	Timeout time.Duration
	// MaxWaiting bounds the commands waiting for the read model at once
	// (each polls it, taking a connection for a moment every 100 ms or
	// so): a command beyond it is answered Accepted as soon as it is
	// appended. Default 64.
	MaxWaiting int
	// ProduceTimeout bounds appending the command. The produce does not
	// end with the client's request: a decided command is appended or
	// fails on its own. Default 10 s.
	ProduceTimeout time.Duration
	// Now is the clock commands take their time from. Default time.Now.
	Now func() time.Time
	// NewID makes the id of a job without an external reference.
	// Default a random UUID.
	NewID func() string
	// Registerer receives the commands' metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.DecideTimeout == 0 {
		c.DecideTimeout = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = 10 * time.Second
	}
	if c.MaxWaiting == 0 {
		c.MaxWaiting = 64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.NewString
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work: every problem, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Kafka == nil || c.Pool == nil {
		errs = append(errs, errors.New("jobcmd: Kafka and Pool are required"))
	}
	if c.DecideTimeout < 0 || c.Timeout < 0 || c.ProduceTimeout < 0 {
		errs = append(errs, errors.New("jobcmd: timeouts must not be negative"))
	}
	if c.MaxWaiting < 0 {
		errs = append(errs, errors.New("jobcmd: MaxWaiting must be positive"))
	}
	return errors.Join(errs...)
}

// Commands executes job commands. It is safe for concurrent use.
type Commands struct {
	cfg      Config
	topic    string
	producer *kgo.Client
	admin    *kadm.Client
	offsets  postgres.Offsets
	jobs     *jobs.Store
	// waiting holds a token per command waiting for the read model.
	waiting chan struct{}
	metrics *metrics
	log     *slog.Logger
}

// New validates cfg and connects a producer (acks from all in-sync
// replicas, idempotent). Close it with Close.
func New(cfg Config) (*Commands, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	cl, err := cfg.Kafka.NewClient("job-commands")
	if err != nil {
		return nil, fmt.Errorf("jobcmd: %w", err)
	}
	return &Commands{
		cfg: cfg, topic: cfg.Kafka.Topic(event.TopicJobs), producer: cl, admin: kadm.NewClient(cl),
		offsets: postgres.Offsets{Projector: jobs.ProjectionName}, jobs: jobs.NewStore(cfg.Pool),
		waiting: make(chan struct{}, cfg.MaxWaiting), metrics: m,
		log: cfg.Logger.With("component", "job-commands"),
	}, nil
}

// Close closes the Kafka client; call it once no command is running.
func (c *Commands) Close() { c.producer.Close() }

// Result is what a command did.
type Result struct {
	JobID string
	// EventID is the id of the command record appended; "" when nothing
	// was (a repeated create).
	EventID string
	// Created: a create appended a new job (false for a repeat of a job
	// that exists, and for a cancellation).
	Created bool
	// Accepted: the command is in tms.jobs (or, for a repeat, was before),
	// but the read model did not show its effect within the timeout; it
	// will, once the job processor has applied it.
	Accepted bool
	// Job is the job as the read model shows it; nil when Accepted.
	Job *jobs.Job
}

// decide runs decision under the lock of job id, on a read model that has
// caught up with tms.jobs, and returns what it returns. Waiting for the
// read model and for the lock happens without holding a connection: a
// waiting command that held one could starve the API's pool.
func (c *Commands) decide(ctx context.Context, id string, decision func(q jobs.Querier) error) error {
	lockCtx, cancel := context.WithTimeout(ctx, c.cfg.DecideTimeout)
	defer cancel()
	pause := time.Millisecond
	var why error // what held the command up last, for the error at the deadline
	for {
		ends, err := c.endOffsets(lockCtx)
		if err == nil {
			err = poll(lockCtx, 10*time.Millisecond, func() (bool, error) { return c.caughtUp(lockCtx, c.cfg.Pool, ends) })
			if err != nil {
				return c.unavailable(lockCtx, ctx, "waiting for the jobs read model to catch up with tms.jobs", err)
			}
			held, err := c.tryDecide(lockCtx, ctx, id, decision)
			if held || err != nil {
				return err
			}
			why = errors.New("the job's lock was held, or tms.jobs moved on, at every try")
		} else {
			// Kafka not answering, or a topic just created and not yet
			// known everywhere: retriable until the deadline.
			why = err
		}
		select {
		case <-lockCtx.Done():
			return c.unavailable(lockCtx, ctx, fmt.Sprintf("deciding (%v)", why), lockCtx.Err())
		case <-time.After(pause + rand.N(pause)):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// tryDecide takes the job's lock if it is free (held false if not),
// checks that the read model is still caught up with the topic (held
// false if not), and runs decision before releasing the lock.
func (c *Commands) tryDecide(lockCtx, ctx context.Context, id string, decision func(q jobs.Querier) error) (held bool, err error) {
	tx, err := c.cfg.Pool.Begin(lockCtx)
	if err != nil {
		return false, c.unavailable(lockCtx, ctx, "begin", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // releases the lock
	var locked bool
	err = tx.QueryRow(lockCtx, `SELECT pg_try_advisory_xact_lock(hashtext('tms.job-commands'), hashtext($1))`, id).Scan(&locked)
	if err != nil || !locked {
		return false, c.unavailable(lockCtx, ctx, "taking the job's lock", err)
	}
	ends, err := c.endOffsets(lockCtx)
	if err != nil {
		return false, nil // retried, as before the lock
	}
	if ok, err := c.caughtUp(lockCtx, tx, ends); err != nil || !ok {
		return false, c.unavailable(lockCtx, ctx, "reading the jobs projection's offsets", err)
	}
	return true, decision(tx)
}

// unavailable wraps a failure before deciding: nil for none,
// ErrUnavailable when the deadline passed, the error itself otherwise.
func (c *Commands) unavailable(lockCtx, ctx context.Context, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case lockCtx.Err() != nil && ctx.Err() == nil:
		return fmt.Errorf("%w: %s took longer than %s", ErrUnavailable, what, c.cfg.DecideTimeout)
	}
	return fmt.Errorf("jobcmd: %s: %w", what, err)
}

// produce appends e to tms.jobs, keyed by the plate. Once a command is
// decided it is appended whether or not the client waits for the answer,
// so the produce runs on a context of its own.
func (c *Commands) produce(ctx context.Context, plate string, e event.Envelope) error {
	value, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("jobcmd: encode %s: %w", e.Type, err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ProduceTimeout)
	defer cancel()
	r := &kgo.Record{
		Topic: c.topic, Key: []byte(plate), Value: value,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}},
	}
	if err := c.producer.ProduceSync(pctx, r).FirstErr(); err != nil {
		return fmt.Errorf("jobcmd: produce %s of vehicle %s: %w", e.Type, plate, err)
	}
	return nil
}

// endOffsets returns where tms.jobs ends now for a read_committed reader
// (the last stable offsets), by partition: the job processor writes it in
// transactions, and the projection cannot pass an open one.
func (c *Commands) endOffsets(ctx context.Context) (map[int32]int64, error) {
	ends, err := c.admin.ListCommittedOffsets(ctx, c.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", c.topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// caughtUp reports whether the jobs projection, as q sees it, has applied
// every record below ends.
func (c *Commands) caughtUp(ctx context.Context, q postgres.Querier, ends map[int32]int64) (bool, error) {
	partitions := make([]int32, 0, len(ends))
	for p := range ends {
		partitions = append(partitions, p)
	}
	next, err := c.offsets.Read(ctx, q, c.topic, partitions)
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

// await polls the job until shown reports true for it (or fails), for up
// to the timeout: shown false then (and a nil job), the result is
// Accepted. A job the read model does not hold yet is not shown. Beyond
// MaxWaiting commands waiting at once, it does not wait.
func (c *Commands) await(ctx context.Context, id string, shown func(j *jobs.Job) (bool, error)) (*jobs.Job, error) {
	select {
	case c.waiting <- struct{}{}:
		defer func() { <-c.waiting }()
	default:
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var got *jobs.Job
	// The job processor applies a command only after its decision delay
	// (seconds): polling the read model faster than every 100 ms would
	// cost the database and gain nothing.
	err := poll(wctx, 100*time.Millisecond, func() (bool, error) {
		j, err := c.jobs.Get(wctx, id)
		switch {
		case errors.Is(err, jobs.ErrNotFound):
			return false, nil
		case err != nil:
			return false, err
		}
		ok, err := shown(&j)
		if ok {
			got = &j
		}
		return ok, err
	})
	switch {
	case wctx.Err() != nil && ctx.Err() == nil:
		return nil, nil
	case err != nil:
		return nil, err
	}
	return got, nil
}

// poll calls done with a growing pause, up to maxPause, until it reports
// true, fails, or ctx ends.
func poll(ctx context.Context, maxPause time.Duration, done func() (bool, error)) error {
	pause := time.Millisecond
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}
