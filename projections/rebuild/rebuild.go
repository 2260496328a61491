package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/projections/projector"
)

// ErrRunning is returned when another process is rebuilding the same
// database's read models.
var ErrRunning = errors.New("another tms rebuild is running against this database")

// ErrUnfinished is returned when an unfinished rebuild of other read
// models is in the way (Config.Restart abandons it).
var ErrUnfinished = errors.New("an unfinished rebuild of other read models is in the way")

// Progress is a rebuild as it stands, as Config.Report receives it.
type Progress struct {
	// ID is the rebuild's id; Resumed says this run went on with it.
	ID      string
	Resumed bool
	// State is the rebuild's (StateBuilding, StateSwitching, StateDone).
	State string
	// Models are the read models' progress, in name order.
	Models []Model
	// Elapsed is this run's time so far.
	Elapsed time.Duration
}

// Result is what a finished rebuild did.
type Result struct {
	ID      string
	Resumed bool
	// Records is how many records the rebuilt read models were projected
	// from, all runs of the rebuild together; Projected is those this run
	// projected.
	Records, Projected int64
	// Elapsed is this run's time, from its start to the switch's commit.
	Elapsed time.Duration
}

// model is one read model being rebuilt.
type model struct {
	reg    projector.Registration
	name   string
	group  string
	topics []string // namespaced, sorted
	// parts are each topic's partitions, sorted.
	parts map[string][]int32
	// starts are the topics' first retained offsets, targets their ends
	// (for read_committed readers) when this run started: the rebuild is
	// caught up once it has reached the targets and the live projector.
	starts, targets offsets
	run             func(context.Context) error
	state           string
	// firstDone is done as this run found it; samples are the recent
	// measurements, for the rate.
	firstDone int64
	samples   []sample
	latest    Model
}

type sample struct {
	at   time.Time
	done int64
}

// offsets are next offsets by topic and partition.
type offsets map[string]map[int32]int64

func (o offsets) at(topic string, p int32, missing int64) int64 {
	if v, ok := o[topic][p]; ok {
		return v
	}
	return missing
}

// rebuilder is one run of a rebuild.
type rebuilder struct {
	cfg     Config
	log     *slog.Logger
	adm     *kadm.Client
	id      string
	shadow  string // the shadow schema
	live    string // the live read models' schema
	resumed bool
	models  []*model
	start   time.Time
}

// Run rebuilds cfg.ReadModels from the start of their topics into fresh
// tables, beside the live ones, and once they have caught up with the
// live projectors puts them in their place in one transaction: see the
// package documentation. It resumes an unfinished rebuild of the same
// read models. When ctx ends first, the rebuild stops where it got to,
// recorded as interrupted, and Run returns ctx's error; the next Run of
// the same read models goes on from there.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	r := &rebuilder{cfg: cfg, log: cfg.Logger.With("component", "rebuild"), start: time.Now()}
	if err := EnsureState(ctx, cfg.Pool); err != nil {
		return Result{}, err
	}
	// One rebuild at a time: the lock is the session's, held by this
	// connection until Run returns (or its process dies).
	lockConn, err := cfg.Pool.Acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("rebuild: %w", err)
	}
	defer lockConn.Release()
	var locked bool
	if err := lockConn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClass, lockRunning).Scan(&locked); err != nil {
		return Result{}, fmt.Errorf("rebuild: %w", err)
	}
	if !locked {
		return Result{}, ErrRunning
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := lockConn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1, $2)`, lockClass, lockRunning); err != nil {
			lockConn.Conn().Close(unlockCtx) // the lock goes with the session
		}
	}()

	// Consumers of a one-off process: dynamic membership, so that a
	// resumed rebuild is not kept waiting by its own former members.
	kc := *cfg.Kafka
	kc.InstanceID = ""
	r.adm, err = kc.NewAdmin("rebuild-admin")
	if err != nil {
		return Result{}, err
	}
	defer r.adm.Close()
	if err := cfg.Pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&r.live); err != nil {
		return Result{}, fmt.Errorf("rebuild: the read models' schema: %w", err)
	}
	if err := r.begin(ctx); err != nil {
		return Result{}, err
	}
	if err := r.prepare(ctx, &kc); err != nil {
		return Result{}, r.fail(ctx, err)
	}
	return r.build(ctx)
}

// names lists the read models' names, sorted.
func (r *rebuilder) names() []string {
	out := make([]string, 0, len(r.cfg.ReadModels))
	for _, m := range r.cfg.ReadModels {
		out = append(out, m.ShortName())
	}
	slices.Sort(out)
	return out
}

// begin finds the unfinished rebuild to resume, or starts a new one, and
// makes its shadow schema's tables (again, on a resume: migrations only
// add what is missing, as they do to the live schema).
func (r *rebuilder) begin(ctx context.Context) error {
	names := r.names()
	var id, shadow string
	var was []string
	err := r.cfg.Pool.QueryRow(ctx, `
		SELECT id::text, shadow_schema, read_models FROM tms_rebuild.rebuilds
		WHERE state NOT IN ('done', 'abandoned') ORDER BY started_at DESC LIMIT 1`).Scan(&id, &shadow, &was)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("rebuild: find an unfinished rebuild: %w", err)
	case r.cfg.Restart:
		r.log.Info("abandoning the unfinished rebuild", "rebuild", id, "read_models", was)
		if err := r.abandon(ctx, id, shadow); err != nil {
			return err
		}
	case slices.Equal(was, names):
		r.id, r.shadow, r.resumed = id, shadow, true
	default:
		return fmt.Errorf("%w: rebuild %s of %s; run `tms rebuild %s` to finish it, or add --restart to drop it and rebuild %s",
			ErrUnfinished, id, strings.Join(was, ", "), strings.Join(was, " "), strings.Join(names, ", "))
	}
	if r.id == "" {
		u := uuid.New()
		r.id = u.String()
		r.shadow = ShadowPrefix + strings.ReplaceAll(r.id, "-", "")[:12]
		if _, err := r.cfg.Pool.Exec(ctx, `
			INSERT INTO tms_rebuild.rebuilds (id, shadow_schema, read_models, state, started_at, updated_at)
			VALUES ($1, $2, $3, 'building', now(), now())`, r.id, r.shadow, names); err != nil {
			return fmt.Errorf("rebuild: record the rebuild: %w", err)
		}
	}
	if _, err := r.cfg.Pool.Exec(ctx, `UPDATE tms_rebuild.rebuilds SET state = 'building', detail = NULL, updated_at = now() WHERE id = $1`, r.id); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if _, err := r.cfg.Pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{r.shadow}.Sanitize()); err != nil {
		return fmt.Errorf("rebuild: create schema %s: %w", r.shadow, err)
	}
	if err := postgres.MigrateSchema(r.cfg.DatabaseURL, r.cfg.Migrations, r.shadow); err != nil {
		return fmt.Errorf("rebuild: make the shadow tables: %w", err)
	}
	return r.copyReads(ctx)
}

// copyReads copies into the shadow schema the rows of the tables the read
// models read but do not build (projector.Spec.Reads), as they are now:
// the rebuilt read models are made under the live state (retention's
// extent: fixes it has dropped are not stored again). A resumed rebuild
// copies them again.
func (r *rebuilder) copyReads(ctx context.Context) error {
	return pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		for _, m := range r.cfg.ReadModels {
			for _, t := range m.Reads {
				shadow, live := pgx.Identifier{r.shadow, t}.Sanitize(), pgx.Identifier{r.live, t}.Sanitize()
				if _, err := tx.Exec(ctx, `DELETE FROM `+shadow); err != nil {
					return fmt.Errorf("rebuild: copy %s: %w", t, err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO `+shadow+` SELECT * FROM `+live); err != nil {
					return fmt.Errorf("rebuild: copy %s: %w", t, err)
				}
			}
		}
		return nil
	})
}

// abandon drops an unfinished rebuild's shadow schema and records it as
// abandoned.
func (r *rebuilder) abandon(ctx context.Context, id, shadow string) error {
	return pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{shadow}.Sanitize()+` CASCADE`); err != nil {
			return fmt.Errorf("rebuild: drop %s: %w", shadow, err)
		}
		_, err := tx.Exec(ctx, `UPDATE tms_rebuild.rebuilds SET state = 'abandoned', updated_at = now(), finished_at = now() WHERE id = $1`, id)
		return err
	})
}

// prepare builds each read model's projector into the shadow schema and
// reads its topics' extent.
func (r *rebuilder) prepare(ctx context.Context, kc *kafka.Config) error {
	short := strings.ReplaceAll(r.id, "-", "")[:12]
	for _, reg := range r.cfg.ReadModels {
		m := &model{reg: reg, name: reg.ShortName(), group: reg.Name + ".rebuild." + short, parts: map[string][]int32{}, state: ModelBuilding}
		for _, t := range reg.Topics {
			m.topics = append(m.topics, kc.Topic(t))
		}
		slices.Sort(m.topics)
		run, err := reg.NewProjector(projector.Deps{
			Kafka: kc, Pool: r.cfg.Pool, Members: r.cfg.Members, MaxBatch: r.cfg.MaxBatch,
			Shadow:     &projector.Shadow{Group: m.group, Schema: r.shadow},
			Registerer: r.cfg.Registerer, Logger: r.cfg.Logger,
		})
		if err != nil {
			return err
		}
		m.run = run
		starts, err := r.adm.ListStartOffsets(ctx, m.topics...)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return fmt.Errorf("rebuild: start offsets of %s: %w", strings.Join(m.topics, ", "), err)
		}
		m.starts = listed(starts)
		if m.targets, err = r.ends(ctx, m); err != nil {
			return err
		}
		for topic, ps := range m.starts {
			for p := range ps {
				m.parts[topic] = append(m.parts[topic], p)
			}
			slices.Sort(m.parts[topic])
		}
		if _, err := r.cfg.Pool.Exec(ctx, `
			INSERT INTO tms_rebuild.rebuild_models (rebuild_id, read_model, tables, state, updated_at)
			VALUES ($1, $2, $3, 'building', now())
			ON CONFLICT (rebuild_id, read_model) DO UPDATE SET state = 'building', updated_at = now()`,
			r.id, m.name, reg.Tables); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		r.models = append(r.models, m)
	}
	slices.SortFunc(r.models, func(a, b *model) int { return strings.Compare(a.name, b.name) })
	return nil
}

// ends reads where m's topics end for a read_committed reader.
func (r *rebuilder) ends(ctx context.Context, m *model) (offsets, error) {
	ends, err := r.adm.ListCommittedOffsets(ctx, m.topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild: end offsets of %s: %w", strings.Join(m.topics, ", "), err)
	}
	return listed(ends), nil
}

func listed(l kadm.ListedOffsets) offsets {
	out := offsets{}
	l.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// crew is the rebuild's projectors while they run.
type crew struct {
	cancel context.CancelFunc
	errs   chan error
	left   int
	// halted is set once the switch has stopped them.
	halted bool
}

// halt stops the projectors without waiting for them: a transaction of
// theirs waiting for a lock the switch holds gives up at once.
func (c *crew) halt() {
	c.halted = true
	c.cancel()
}

func (r *rebuilder) startCrew(ctx context.Context) *crew {
	ctx, cancel := context.WithCancel(ctx)
	c := &crew{cancel: cancel, errs: make(chan error, len(r.models)), left: len(r.models)}
	for _, m := range r.models {
		go func() {
			err := m.run(ctx)
			if err != nil {
				err = fmt.Errorf("rebuild of %s: %w", m.name, err)
			}
			c.errs <- err
		}()
	}
	return c
}

// stop stops the projectors and waits for them; it returns the first
// error one stopped with.
func (c *crew) stop() error {
	c.cancel()
	var first error
	for ; c.left > 0; c.left-- {
		if err := <-c.errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// build runs the projectors, reports progress, and switches over once
// every read model has caught up.
func (r *rebuilder) build(ctx context.Context) (Result, error) {
	if r.resumed {
		r.log.Info("resuming the rebuild", "rebuild", r.id, "read_models", r.names(), "schema", r.shadow)
	} else {
		r.log.Info("rebuilding", "rebuild", r.id, "read_models", r.names(), "schema", r.shadow)
	}
	// Where this run starts, before its projectors move: what it projects
	// (Result.Projected, the rate) counts from here, not from the first
	// tick, by which a small read model is already built.
	if _, err := r.measure(ctx); err != nil {
		return Result{}, r.fail(ctx, err)
	}
	c := r.startCrew(ctx)
	tick := time.NewTicker(r.cfg.ProgressInterval)
	defer tick.Stop()
	analysed := false
	for {
		select {
		case <-ctx.Done():
			_ = c.stop()
			return Result{}, r.interrupted(ctx)
		case err := <-c.errs:
			c.left--
			if err == nil {
				err = errors.New("a projector stopped by itself")
			}
			_ = c.stop()
			return Result{}, r.fail(ctx, err)
		case <-tick.C:
		}
		ready, err := r.measure(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue // reported as interrupted above
			}
			_ = c.stop()
			return Result{}, r.fail(ctx, err)
		}
		r.report(StateBuilding)
		if !ready {
			continue
		}
		if !analysed {
			// Fresh statistics, so that the API's first queries on the
			// new tables are planned well.
			if err := r.analyse(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				_ = c.stop()
				return Result{}, r.fail(ctx, err)
			}
			analysed = true
		}
		switched, err := r.trySwitch(ctx, c)
		switch {
		case switched:
			_ = c.stop() // stopped by the switch already; collect them
			res := r.result()
			r.report(StateDone)
			r.log.Info("rebuilt and switched over", "rebuild", r.id, "records", res.Records,
				"projected", res.Projected, "elapsed", res.Elapsed.Round(time.Millisecond))
			return res, nil
		case err != nil && !errors.Is(err, errNotNow):
			_ = c.stop()
			return Result{}, r.fail(ctx, err)
		case err != nil:
			r.log.Warn("the switch was put off; trying again", "rebuild", r.id, "why", err)
		}
		if c.halted {
			// The switch stopped the projectors before it gave up: go on.
			if err := c.stop(); err != nil {
				return Result{}, r.fail(ctx, err)
			}
			c = r.startCrew(ctx)
		}
	}
}

func (r *rebuilder) result() Result {
	res := Result{ID: r.id, Resumed: r.resumed, Elapsed: time.Since(r.start)}
	for _, m := range r.models {
		res.Records += m.latest.Done
		res.Projected += m.latest.Done - m.firstDone
	}
	return res
}

// measure reads every read model's progress, stores it, and reports
// whether all have caught up: reached the topics' ends as they were when
// this run started, and come within a batch of the live projector.
func (r *rebuilder) measure(ctx context.Context) (bool, error) {
	now := time.Now()
	ready := true
	for _, m := range r.models {
		built, err := readOffsets(ctx, r.cfg.Pool, r.shadow, m.group, m.topics)
		if err != nil {
			return false, err
		}
		live, err := readOffsets(ctx, r.cfg.Pool, r.live, m.reg.Name, m.topics)
		if err != nil {
			return false, err
		}
		ends, err := r.ends(ctx, m)
		if err != nil {
			return false, err
		}
		var done, total, gap int64
		reached := true
		for _, topic := range m.topics {
			for _, p := range m.parts[topic] {
				start := m.starts.at(topic, p, 0)
				at := max(built.at(topic, p, start), start)
				done += at - start
				total += max(ends.at(topic, p, 0)-start, 0)
				if at < m.targets.at(topic, p, 0) {
					reached = false
				}
				gap += max(live.at(topic, p, 0)-at, 0)
			}
		}
		total = max(total, done)
		if len(m.samples) == 0 {
			m.firstDone = done
		}
		m.samples = append(m.samples, sample{now, done})
		// The rate over the last ten seconds or so.
		for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= 10*time.Second {
			m.samples = m.samples[1:]
		}
		first := m.samples[0]
		rate := 0.0
		if dt := now.Sub(first.at).Seconds(); dt > 0 {
			rate = float64(done-first.done) / dt
		}
		caught := reached && gap <= int64(r.cfg.MaxBatch)
		if caught {
			m.state = ModelCaughtUp
		} else {
			m.state = ModelBuilding
			ready = false
		}
		m.latest = Model{Name: m.name, Tables: m.reg.Tables, State: m.state, Done: done, Total: total, Rate: rate, UpdatedAt: now}
		if rate > 0 {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			m.latest.ETA = &eta
		} else if done >= total {
			zero := time.Duration(0)
			m.latest.ETA = &zero
		}
	}
	return ready, r.store(ctx, StateBuilding)
}

// store writes the progress to the state tables.
func (r *rebuilder) store(ctx context.Context, state string) error {
	return pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		return r.storeIn(ctx, tx, state)
	})
}

func (r *rebuilder) storeIn(ctx context.Context, tx pgx.Tx, state string) error {
	for _, m := range r.models {
		var eta *float64
		if m.latest.ETA != nil {
			s := m.latest.ETA.Seconds()
			eta = &s
		}
		if _, err := tx.Exec(ctx, `
			UPDATE tms_rebuild.rebuild_models SET state = $3, done = $4, total = $5, rate = $6, eta_s = $7, updated_at = now()
			WHERE rebuild_id = $1 AND read_model = $2`, r.id, m.name, m.state, m.latest.Done, m.latest.Total, m.latest.Rate, eta); err != nil {
			return fmt.Errorf("rebuild: store progress: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE tms_rebuild.rebuilds SET state = $2, updated_at = now() WHERE id = $1`, r.id, state); err != nil {
		return fmt.Errorf("rebuild: store progress: %w", err)
	}
	return nil
}

// report hands the progress to Config.Report.
func (r *rebuilder) report(state string) {
	if r.cfg.Report == nil {
		return
	}
	p := Progress{ID: r.id, Resumed: r.resumed, State: state, Elapsed: time.Since(r.start)}
	for _, m := range r.models {
		p.Models = append(p.Models, m.latest)
	}
	r.cfg.Report(p)
}

// analyse gathers the planner's statistics of the shadow tables.
func (r *rebuilder) analyse(ctx context.Context) error {
	for _, m := range r.models {
		for _, t := range m.reg.Tables {
			if _, err := r.cfg.Pool.Exec(ctx, `ANALYZE `+pgx.Identifier{r.shadow, t}.Sanitize()); err != nil {
				return fmt.Errorf("rebuild: analyse %s.%s: %w", r.shadow, t, err)
			}
		}
	}
	return nil
}

// interrupted records the rebuild as interrupted and returns ctx's error.
func (r *rebuilder) interrupted(ctx context.Context) error {
	r.log.Info("rebuild interrupted; `tms rebuild` with the same read models goes on from here", "rebuild", r.id,
		"read_models", r.names())
	r.setState(ctx, StateInterrupted, "")
	return ctx.Err()
}

// fail records the rebuild as failed with err and returns err.
func (r *rebuilder) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	r.setState(ctx, StateFailed, err.Error())
	return fmt.Errorf("rebuild %s: %w", r.id, err)
}

// setState records state even when ctx has ended, within a few seconds.
func (r *rebuilder) setState(ctx context.Context, state, detail string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := r.cfg.Pool.Exec(ctx, `UPDATE tms_rebuild.rebuilds SET state = $2, detail = nullif($3, ''), updated_at = now() WHERE id = $1`,
		r.id, state, detail); err != nil {
		r.log.Warn("recording the rebuild's state failed", "rebuild", r.id, "state", state, "err", err)
	}
}

// readOffsets reads projector's stored offsets of topics in schema's
// projector_offsets.
func readOffsets(ctx context.Context, q postgres.Querier, schema, projector string, topics []string) (offsets, error) {
	rows, err := q.Query(ctx, `SELECT topic, partition, next_offset FROM `+pgx.Identifier{schema, "projector_offsets"}.Sanitize()+`
		WHERE projector = $1 AND topic = ANY($2)`, projector, topics)
	if err != nil {
		return nil, fmt.Errorf("rebuild: offsets of %s: %w", projector, err)
	}
	out := offsets{}
	var topic string
	var p int32
	var next int64
	if _, err := pgx.ForEachRow(rows, []any{&topic, &p, &next}, func() error {
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][p] = next
		return nil
	}); err != nil {
		return nil, fmt.Errorf("rebuild: offsets of %s: %w", projector, err)
	}
	return out, nil
}
