package txloop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
)

// Config configures Run.
type Config struct {
	// Name names the processor in errors ("jobs").
	Name string
	// CommitInterval is how long a transaction stays open for more
	// records once it began.
	CommitInterval time.Duration
	// MaxBatch bounds the records of a poll, and of a transaction.
	MaxBatch int
	// PollTimeout, when positive, makes a poll between transactions
	// return after it at the latest, so that Due is asked that often
	// while no records come. Zero waits for records.
	PollTimeout time.Duration
	// Process takes a batch of records into the open transaction (its
	// fetches may have none, when Due began the transaction). It returns
	// nil once everything it produced is acknowledged; an error aborts
	// the transaction. It runs on the loop's goroutine.
	Process func(ctx context.Context, fetches kgo.Fetches) error
	// Polled, if set, runs after every poll the loop goes on from (not
	// after one that brought nothing into an open transaction, which ends
	// it), before the state of revoked partitions is dropped.
	Polled func()
	// Due, if set, says after a poll that brought no records whether to
	// begin a transaction all the same.
	Due func() bool
	// Logger receives the aborts.
	Logger *slog.Logger
	// Metrics counts the transactions.
	Metrics *Metrics
	// Outage is told of the Kafka errors Run waits out (the group
	// coordinator unreachable, a partition's leader gone) and of their
	// end; it backs off between polls meanwhile. Default: one nobody
	// follows.
	Outage *kafka.Outage
}

// Run polls sess and processes what it brings in transactions until ctx
// ends (then nil) or a transaction cannot begin or end (then the error:
// the session cannot be used any more, see Keep). A fetch error does not
// end it unless it is kafka.Permanent: franz-go reports a group it cannot
// join (its coordinator down) or a partition it cannot fetch as a fetch
// error and goes on retrying, and so does Run, backing off while polls
// bring nothing.
// parts is the processor's state of its partitions: Run drops that of
// partitions taken away, and all of it after an abort. sess must have
// been made with parts.Options().
func Run[S any](ctx context.Context, sess *kgo.GroupTransactSession, parts *Partitions[S], cfg Config) error {
	if cfg.Outage == nil {
		cfg.Outage = kafka.NewOutage(cfg.Name, cfg.Logger)
	}
	for {
		fetches := poll(ctx, sess, cfg.MaxBatch, cfg.PollTimeout)
		if ctx.Err() != nil {
			return nil
		}
		if err := FetchError(fetches); err != nil {
			if kafka.Permanent(err) {
				return fmt.Errorf("%s: %w", cfg.Name, err)
			}
			if fetches.NumRecords() == 0 {
				cfg.Outage.Failed(ctx, fmt.Errorf("%s: %w", cfg.Name, err))
				continue
			}
		} else if fetches.NumRecords() > 0 {
			cfg.Outage.Recovered()
		}
		polled(&cfg, parts)
		if fetches.NumRecords() == 0 && (cfg.Due == nil || !cfg.Due()) {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("%s: begin a transaction: %w", cfg.Name, err)
		}
		failed := transact(ctx, sess, parts, &cfg, fetches)
		if failed != nil {
			if ctx.Err() != nil {
				// Stopping: abort now rather than leave the transaction open
				// until it times out, holding back every read_committed
				// consumer of the topics it wrote to.
				abortCtx, cancelAbort := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_, _ = sess.End(abortCtx, kgo.TryAbort)
				cancelAbort()
				return nil
			}
			// The records stay uncommitted; abort and start over from the
			// committed state.
			cfg.Logger.Error("processing a batch failed; aborting it", "err", failed)
		}
		committed, err := sess.End(context.WithoutCancel(ctx), kgo.TransactionEndTry(failed == nil))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: end a transaction: %w", cfg.Name, err)
		}
		cfg.Metrics.transaction(committed)
		if committed {
			cfg.Outage.Recovered()
		}
		if !committed {
			cfg.Logger.Warn("a transaction was aborted; restoring the partitions' state from what was committed")
			// Offsets are back at the last commit; so must the state be.
			parts.forget()
		}
	}
}

// Keep runs session, which makes a transact session and Runs it, again
// and again until ctx ends (then nil) or it fails with a
// kafka.Permanent error (then that error). A transaction that cannot end
// leaves its session unusable ("no returned error is retryable", says
// franz-go): Keep drops the state of every partition, waits the outage's
// backoff and starts a new session, which fences the old transactional
// producer, aborts what it left open and takes the partitions back from
// their committed offsets and state, as after a crash, without the
// process exiting.
func Keep[S any](ctx context.Context, parts *Partitions[S], outage *kafka.Outage, session func(context.Context) error) error {
	for {
		err := session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || kafka.Permanent(err) {
			return err
		}
		parts.reset()
		outage.Failed(ctx, err)
	}
}

// poll polls for up to maxRecords records, for up to timeout when it is
// positive.
func poll(ctx context.Context, sess *kgo.GroupTransactSession, maxRecords int, timeout time.Duration) kgo.Fetches {
	if timeout <= 0 {
		return sess.PollRecords(ctx, maxRecords)
	}
	pollCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return sess.PollRecords(pollCtx, maxRecords)
}

func polled[S any](cfg *Config, parts *Partitions[S]) {
	if cfg.Polled != nil {
		cfg.Polled()
	}
	parts.dropRevoked()
}

// transact fills the open transaction: the batch polled, then whatever
// else arrives until CommitInterval has passed since it began or MaxBatch
// records are in it (see the package doc for why it stays open). It
// returns nil once everything in it is produced.
func transact[S any](ctx context.Context, sess *kgo.GroupTransactSession, parts *Partitions[S], cfg *Config, fetches kgo.Fetches) error {
	deadline := time.Now().Add(cfg.CommitInterval)
	records := 0
	for {
		if err := cfg.Process(ctx, fetches); err != nil {
			return err
		}
		records += fetches.NumRecords()
		if records >= cfg.MaxBatch || !time.Now().Before(deadline) {
			return nil
		}
		pollCtx, cancel := context.WithDeadline(ctx, deadline)
		fetches = sess.PollRecords(pollCtx, cfg.MaxBatch-records)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := FetchError(fetches); err != nil {
			return fmt.Errorf("%s: %w", cfg.Name, err)
		}
		if fetches.NumRecords() == 0 {
			return nil
		}
		// A partition revoked meanwhile fails the transaction anyway.
		polled(cfg, parts)
	}
}

// FetchError returns the first error of fetches that is not the poll's
// own context ending, or nil.
func FetchError(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, partition int32, err error) {
		if fatal == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			fatal = fmt.Errorf("fetch %s[%d]: %w", topic, partition, err)
		}
	})
	return fatal
}
