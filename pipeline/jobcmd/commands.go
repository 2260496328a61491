package jobcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/pipeline/commandlog"
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
	cfg Config
	// commands is tms.jobs and the jobs read model decided on.
	commands *commandlog.Log
	jobs     *jobs.Store
	// waiting holds a token per command waiting for the read model.
	waiting chan struct{}
	metrics *commandlog.Metrics
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
	cl, err := commandlog.New(commandlog.Config{
		Kafka: cfg.Kafka, Pool: cfg.Pool, Topic: event.TopicJobs, Projector: jobs.ProjectionName,
		Role: "job-commands", Subject: "job", ReadModel: "jobs",
		DecideTimeout: cfg.DecideTimeout, ProduceTimeout: cfg.ProduceTimeout, Unavailable: ErrUnavailable,
	})
	if err != nil {
		return nil, fmt.Errorf("jobcmd: %w", err)
	}
	return &Commands{
		cfg: cfg, commands: cl, jobs: jobs.NewStore(cfg.Pool),
		waiting: make(chan struct{}, cfg.MaxWaiting), metrics: m,
		log: cfg.Logger.With("component", "job-commands"),
	}, nil
}

// Close closes the Kafka client; call it once no command is running.
func (c *Commands) Close() { c.commands.Close() }

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

// show waits for the read model to show what the command of res did
// (see await) and answers res with the job, or Accepted. An error of
// shown wrapping job.ErrFinished (the job ended before the command could
// apply) is the answer; any other failure to wait, with the client still
// there, is logged and answered Accepted: the command is appended.
func (c *Commands) show(ctx context.Context, res Result, shown func(j *jobs.Job) (bool, error)) (Result, error) {
	j, err := c.await(ctx, res.JobID, shown)
	switch {
	case errors.Is(err, job.ErrFinished):
		return Result{}, err
	case err != nil && ctx.Err() != nil:
		return Result{}, err // the client went away; the command is in
	case err != nil:
		c.log.WarnContext(ctx, "waiting for the jobs read model failed", "job", res.JobID, "err", err)
		res.Accepted = true
	case j == nil:
		res.Accepted = true
	default:
		res.Job = j
	}
	return res, nil
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
	var got *jobs.Job
	// The job processor applies a command only after its decision delay
	// (seconds): polling the read model faster than every 100 ms would
	// cost the database and gain nothing.
	ok, err := commandlog.Await(ctx, c.cfg.Timeout, 100*time.Millisecond, func(wctx context.Context) (bool, error) {
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
	if !ok {
		return nil, err
	}
	return got, nil
}
