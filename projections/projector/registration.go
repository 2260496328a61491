package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
)

// Spec is what the rest of tms needs to know of a projection besides its
// code: its name, the topics it reads and the tables it writes. Each
// projection package declares its Spec once, and projections.All registers
// it with the projection's constructor; the projector, the project role and
// `tms replay read-models` all take them from there.
type Spec struct {
	// Name identifies the projection: it is its consumer group and the key
	// of its stored offsets. Renaming it re-reads its topics from the start
	// into tables that already hold their rows.
	Name string
	// Topics are the topics it reads, by their contract names
	// (domain/event); the projector adds the Kafka namespace.
	Topics []string
	// Tables are the tables it writes, and no other projection does.
	// `tms replay read-models` empties them, with the projection's
	// offsets, before projecting its topics again; every projection's
	// tables are emptied in one statement, so references between them are
	// no obstacle.
	Tables []string
}

// Validate reports a spec that cannot work.
func (s Spec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("projector: a projection needs a name"))
	}
	if len(s.Topics) == 0 || slices.Contains(s.Topics, "") {
		errs = append(errs, fmt.Errorf("projector: projection %q: its topics are required, none empty", s.Name))
	}
	if len(s.Tables) == 0 || slices.Contains(s.Tables, "") {
		errs = append(errs, fmt.Errorf("projector: projection %q: its tables are required, none empty", s.Name))
	}
	return errors.Join(errs...)
}

// Deps are what every registered projection's projector is built with.
type Deps struct {
	// Kafka is how to reach the brokers.
	Kafka *kafka.Config
	// Pool is the Postgres pool of the read models.
	Pool *pgxpool.Pool
	// Members is how many members of its consumer group a projection runs
	// in this process (Config.Members) when one of its topics has several
	// partitions (TMS_PROJECTOR_MEMBERS). A projection whose topics all
	// have a single partition (the compacted station catalogue) runs one:
	// more would stay idle.
	Members int
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

// members is the member count for a projection of topics.
func (d Deps) members(topics []string) int {
	for _, t := range topics {
		if !kafka.SinglePartition(t) {
			return d.Members
		}
	}
	return 1
}

// Registration is a projection as tms runs it: its Spec, and how to build
// its projector. Register makes one; projections.All lists them.
type Registration struct {
	Spec
	newProjector func(Deps) (run func(context.Context) error, err error)
}

// Register registers the projection that newProjection builds (given the
// metrics registerer and the logger, as every projection's NewProjection
// takes them) under spec. A projection that needs more passes a closure.
func Register[T any, P Projection[T]](spec Spec, newProjection func(prometheus.Registerer, *slog.Logger) P) Registration {
	return Registration{Spec: spec, newProjector: func(d Deps) (func(context.Context) error, error) {
		p, err := New(Config[T]{
			Spec: spec, Kafka: d.Kafka, Pool: d.Pool, Members: d.members(spec.Topics),
			Projection: newProjection(d.Registerer, d.Logger), Registerer: d.Registerer, Logger: d.Logger,
		})
		if err != nil {
			return nil, err
		}
		return p.Run, nil
	}}
}

// NewProjector builds the registered projection's projector and returns
// its Run.
func (r Registration) NewProjector(d Deps) (run func(context.Context) error, err error) {
	if r.newProjector == nil {
		return nil, fmt.Errorf("projector: projection %q was not made by Register", r.Name)
	}
	if d.Members < 1 {
		return nil, fmt.Errorf("projector: projection %q: Members must be at least 1, not %d", r.Name, d.Members)
	}
	run, err = r.newProjector(d)
	if err != nil {
		return nil, fmt.Errorf("projection %s: %w", r.Name, err)
	}
	return run, nil
}

// Reset empties the tables of specs and deletes their stored offsets, in
// one transaction, so that their projectors project their topics again
// from the start. Nothing else is touched: the offsets of other
// projections stay, and so do tables no spec names. The projectors must
// not be running.
func Reset(ctx context.Context, pool *pgxpool.Pool, specs ...Spec) error {
	var tables []string
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return err
		}
		for _, t := range s.Tables {
			tables = append(tables, pgx.Identifier{t}.Sanitize())
		}
	}
	if len(specs) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
			return fmt.Errorf("empty the read models: %w", err)
		}
		for _, s := range specs {
			if err := (postgres.Offsets{Projector: s.Name}).Clear(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
}
