// Package projector runs projections: it consumes a projection's topics in
// a consumer group and applies each polled batch to Postgres in one
// transaction together with the Kafka offsets the batch reaches. The
// offsets live in Postgres, not in Kafka: a crash before the commit loses
// the rows and the offsets together, and the batch is read again; a crash
// after it finds both. No row is lost or doubled.
//
// Partitions move between instances on rebalances. Every transaction
// locks the offsets of the partitions it writes and skips records below
// them, so even an instance that has not yet noticed it lost a partition
// cannot apply a record twice.
//
// The projector works in two stages: while one batch's transaction runs,
// the next batch is polled and decoded, so that the Go work and the
// database work overlap instead of taking turns.
//
// A projection is registered once: its package declares a Spec (name,
// topics, tables) and projections.All passes it to Register with the
// projection's constructor. Everything else (the project role, `tms
// rebuild` through projections/rebuild) works from the registrations.
// Skips is the accounting every projection shares for records it cannot
// read.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
)

// Projection builds one read model from records, each decoded into a T.
// What it is called, what it reads and what it writes is its Spec.
type Projection[T any] interface {
	// Decode reads one record, outside any transaction and possibly while
	// another batch is being applied. ok false skips the record: one the
	// projection cannot read it must skip (and count), not fail on, or the
	// projection would stop for good.
	Decode(r *kgo.Record) (item T, ok bool)
	// Apply writes the rows for items, in record order, within tx. It
	// must be deterministic: items applied again after a crash find no
	// trace of the first attempt.
	Apply(ctx context.Context, tx pgx.Tx, items []T) error
}

// Config configures a projector of items of type T.
type Config[T any] struct {
	// Spec names the projection and its topics (required).
	Spec Spec
	// Kafka is how to reach the brokers.
	Kafka *kafka.Config
	// Pool is the Postgres pool of the read models.
	Pool *pgxpool.Pool
	// Projection is what to build.
	Projection Projection[T]
	// MaxBatch bounds the records applied in one transaction. It only
	// matters with a backlog (a live projector's batches are small), where
	// bigger transactions go faster. Default 50,000.
	MaxBatch int
	// Members is how many members of the consumer group the projector
	// runs: each takes a share of the partitions and applies them in
	// transactions of its own, side by side with the others', where one
	// member would keep one database backend busy and leave the other
	// cores idle. Members beyond the partitions stay idle. Default 1.
	Members int
	// AfterApply, when set, runs inside each transaction after the rows
	// and offsets are written and before the commit; an error aborts the
	// transaction. It lets tests inject a failure at the worst moment.
	AfterApply func(ctx context.Context) error
	// RetryBackoff is the wait after a failed transaction before the same
	// batch is tried again. Default 1s.
	RetryBackoff time.Duration
	// Schema, when set, is the schema the projector writes: its offsets
	// are that schema's projector_offsets, and every transaction runs
	// with search_path set to it alone, so that the projection's SQL,
	// which names its tables unqualified, writes that schema's tables and
	// can touch no others. A rebuild (projections/rebuild) builds fresh
	// tables so, beside the live ones. Empty: the live read models.
	Schema string
	// Registerer receives the projector's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config[T]) setDefaults() {
	if c.MaxBatch == 0 {
		c.MaxBatch = 50_000
	}
	if c.Members == 0 {
		c.Members = 1
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *Config[T]) Validate() error {
	var errs []error
	if c.Kafka == nil || c.Pool == nil || c.Projection == nil {
		errs = append(errs, errors.New("projector: Kafka, Pool and Projection are required"))
	}
	if c.MaxBatch < 1 || c.Members < 1 {
		errs = append(errs, errors.New("projector: MaxBatch and Members must be at least 1"))
	}
	return errors.Join(append(errs, c.Spec.Validate())...)
}

// Projector is a running projection.
type Projector[T any] struct {
	cfg     Config[T]
	offsets postgres.Offsets
	log     *slog.Logger
	metrics *metrics
}

// New validates cfg and builds a projector.
func New[T any](cfg Config[T]) (*Projector[T], error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name := cfg.Spec.Name
	return &Projector[T]{
		cfg:     cfg,
		offsets: postgres.Offsets{Projector: name, Schema: cfg.Schema},
		log:     cfg.Logger.With("component", "projector", "projection", name),
		metrics: newMetrics(cfg.Registerer, name),
	}, nil
}

// batch is a polled batch with its records decoded; items[i] belongs to
// records[i] when kept[i].
type batch[T any] struct {
	records []*kgo.Record
	items   []T
	kept    []bool
	lag     kgo.Fetches
}

// Run consumes and applies until ctx ends. A batch that fails to apply is
// retried until it succeeds or ctx ends; nothing is skipped.
func (p *Projector[T]) Run(ctx context.Context) error {
	if p.cfg.Members == 1 {
		return p.runMember(ctx, 0)
	}
	g, gctx := errgroup.WithContext(ctx)
	for m := range p.cfg.Members {
		g.Go(func() error { return p.runMember(gctx, m) })
	}
	return g.Wait()
}

// runMember is one member of the projector's consumer group.
func (p *Projector[T]) runMember(ctx context.Context, member int) error {
	topics := make([]string, 0, len(p.cfg.Spec.Topics))
	for _, t := range p.cfg.Spec.Topics {
		topics = append(topics, p.cfg.Kafka.Topic(t))
	}
	opts := append(p.cfg.Kafka.MemberOptions(p.cfg.Spec.Name, member),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Apply a polled batch before a rebalance can move its partitions.
		kgo.BlockRebalanceOnPoll(),
		// Transaction markers come through as records, so that the stored
		// offsets move past them: a projector that has read everything is
		// then at the partition's end, not one marker short of it.
		kgo.KeepControlRecords(),
		kgo.AdjustFetchOffsetsFn(p.startOffsets),
	)
	role := "projector-" + p.cfg.Spec.Name
	if member > 0 {
		role += "-" + strconv.Itoa(member) // client metrics of its own
	}
	cl, err := p.cfg.Kafka.NewClient(role, opts...)
	if err != nil {
		return fmt.Errorf("projector %s: %w", p.cfg.Spec.Name, err)
	}
	outage := p.cfg.Kafka.Health.Outage(role, p.cfg.Kafka)

	// The decode stage runs one batch ahead of the apply stage. A batch
	// polled before the previous one let a rebalance through may hold
	// records of partitions this instance no longer owns: applying them is
	// still safe, as every transaction skips records below the offsets it
	// finds committed.
	ctx, cancel := context.WithCancel(ctx)
	decoded := make(chan batch[T], 1)
	fatal := make(chan error, 1)
	defer func() {
		// Stop the decode stage and wait for it: a batch it polled last
		// blocks rebalances, and so leaving the group, until allowed. Then
		// leave at once, so that another instance takes over the
		// partitions without waiting for a session timeout.
		cancel()
		for range decoded {
		}
		cl.AllowRebalance()
		p.close(cl)
	}()
	go func() {
		defer close(decoded)
		for {
			fetches := cl.PollRecords(ctx, p.cfg.MaxBatch)
			if ctx.Err() != nil {
				return
			}
			if err := fatalFetchError(fetches); err != nil {
				if kafka.Permanent(err) {
					fatal <- fmt.Errorf("projector %s: %w", p.cfg.Spec.Name, err)
					return
				}
				// franz-go reports a group coordinator it cannot reach, or a
				// partition it cannot fetch, and goes on retrying: so does
				// the projector, backing off while nothing comes.
				if fetches.NumRecords() == 0 {
					cl.AllowRebalance()
					outage.Failed(ctx, fmt.Errorf("projector %s: %w", p.cfg.Spec.Name, err))
					continue
				}
			} else if fetches.NumRecords() > 0 {
				outage.Recovered()
			}
			records := fetches.Records()
			if len(records) == 0 {
				cl.AllowRebalance()
				continue
			}
			b := batch[T]{records: records, items: make([]T, len(records)), kept: make([]bool, len(records)), lag: fetches}
			for i, r := range records {
				if !r.Attrs.IsControl() {
					b.items[i], b.kept[i] = p.cfg.Projection.Decode(r)
				}
			}
			select {
			case decoded <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	for b := range decoded {
		if err := p.applyUntilDone(ctx, b); err != nil {
			break // ctx ended; the batch is read again next time
		}
		p.metrics.observeLag(b.lag)
		cl.AllowRebalance()
	}
	select {
	case err := <-fatal:
		return err
	default:
		return nil
	}
}

// closeWait bounds how long a stopping member waits to leave its group.
const closeWait = 5 * time.Second

// close closes a member's client, waiting closeWait at most. A client that
// stops in the middle of a rebalance waits for its join to be answered,
// and the broker answers once every member has rejoined or the rebalance
// timeout (a minute) has passed: static members that are stopping too do
// not rejoin. Stopping need not wait for that: the offsets are in
// Postgres, and the broker completes the rebalance without this member.
func (p *Projector[T]) close(cl *kgo.Client) {
	closed := make(chan struct{})
	go func() {
		cl.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(closeWait):
		p.log.Warn("leaving the consumer group is held up by a rebalance; stopping without waiting for it")
	}
}

// startOffsets tells the consumer where to start in newly assigned
// partitions: where the projector's own offsets say, not Kafka's.
func (p *Projector[T]) startOffsets(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	out := make(map[string]map[int32]kgo.Offset, len(assigned))
	for topic, parts := range assigned {
		ids := make([]int32, 0, len(parts))
		for id := range parts {
			ids = append(ids, id)
		}
		next, err := p.offsets.Read(ctx, p.cfg.Pool, topic, ids)
		if err != nil {
			return nil, err
		}
		out[topic] = make(map[int32]kgo.Offset, len(ids))
		for _, id := range ids {
			if off := next[id]; off >= 0 {
				out[topic][id] = kgo.NewOffset().At(off)
			} else {
				out[topic][id] = kgo.NewOffset().AtStart()
			}
		}
	}
	return out, nil
}

func (p *Projector[T]) applyUntilDone(ctx context.Context, b batch[T]) error {
	for {
		start := time.Now()
		applied, err := p.apply(ctx, b)
		if err == nil {
			p.metrics.batch(applied, time.Since(start))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopped, not failed: the batch is read again next time
		}
		p.metrics.failures.Inc()
		p.log.Error("applying a batch failed; retrying it", "records", len(b.records), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.cfg.RetryBackoff):
		}
	}
}

// apply writes one batch and its offsets in a transaction and returns how
// many records it applied (records below the stored offsets are skipped).
func (p *Projector[T]) apply(ctx context.Context, b batch[T]) (int, error) {
	applied := 0
	err := pgx.BeginFunc(ctx, p.cfg.Pool, func(tx pgx.Tx) error {
		// The commit is synchronous whatever the server's default: the
		// projector reads on from where its Kafka client is, and goes back
		// to the offsets stored in Postgres only when it is given
		// partitions, so a commit Postgres acknowledged and then lost in a
		// crash of its own (synchronous_commit off) would leave a gap that
		// the offsets of the next batches cover.
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		if p.cfg.Schema != "" {
			if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{p.cfg.Schema}.Sanitize()); err != nil {
				return fmt.Errorf("search_path %s: %w", p.cfg.Schema, err)
			}
		}
		next := map[string]map[int32]int64{}
		for topic, parts := range partitionsOf(b.records) {
			n, err := p.offsets.Lock(ctx, tx, topic, parts)
			if err != nil {
				return err
			}
			next[topic] = n
		}
		reached := map[string]map[int32]int64{}
		fresh := make([]T, 0, len(b.items))
		for i, r := range b.records {
			if r.Offset < next[r.Topic][r.Partition] {
				continue // applied already, by us before a crash or by another instance
			}
			if reached[r.Topic] == nil {
				reached[r.Topic] = map[int32]int64{}
			}
			reached[r.Topic][r.Partition] = r.Offset + 1
			if b.kept[i] {
				fresh = append(fresh, b.items[i])
			}
			applied++
		}
		for topic, offs := range reached {
			if err := p.offsets.Store(ctx, tx, topic, offs); err != nil {
				return err
			}
		}
		if len(fresh) > 0 {
			if err := p.cfg.Projection.Apply(ctx, tx, fresh); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
		}
		if p.cfg.AfterApply != nil {
			if err := p.cfg.AfterApply(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return applied, nil
}

// partitionsOf lists the partitions of each topic that records touch.
func partitionsOf(records []*kgo.Record) map[string][]int32 {
	seen := map[string]map[int32]bool{}
	out := map[string][]int32{}
	for _, r := range records {
		if seen[r.Topic] == nil {
			seen[r.Topic] = map[int32]bool{}
		}
		if !seen[r.Topic][r.Partition] {
			seen[r.Topic][r.Partition] = true
			out[r.Topic] = append(out[r.Topic], r.Partition)
		}
	}
	return out
}

// fatalFetchError returns the first fetch error but the poll's own
// context ending; the caller tells a permanent one (kafka.Permanent) from
// one it waits out.
func fatalFetchError(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, partition int32, err error) {
		if fatal == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			fatal = fmt.Errorf("fetch %s[%d]: %w", topic, partition, err)
		}
	})
	return fatal
}
