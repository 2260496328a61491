package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
)

// Spec is what the rest of tms needs to know of a projection besides its
// code: its name, the topics it reads and the tables it writes. Each
// projection package declares its Spec once, and projections.All registers
// it with the projection's constructor; the projector, the project role and
// `tms rebuild` all take them from there.
type Spec struct {
	// Name identifies the projection: it is its consumer group and the key
	// of its stored offsets. Renaming it re-reads its topics from the start
	// into tables that already hold their rows.
	Name string
	// Topics are the topics it reads, by their contract names
	// (domain/event); the projector adds the Kafka namespace.
	Topics []string
	// Tables are the tables it writes, and no other projection does; it
	// reads no other tables either, but for Reads. `tms rebuild` builds fresh copies of
	// them in a schema of their own and puts them in the place of these
	// (projections/rebuild).
	Tables []string
	// Reads are tables it reads that are no read model's: state kept by
	// something other than its topics, such as how far retention has
	// dropped its history (history_retention). A rebuild copies their
	// rows into its schema when it starts, so that the rebuilt read model
	// is made under the same state, and leaves the live ones in place.
	Reads []string
}

// ShortName is what users call the read model (`tms rebuild vehicles`):
// the last dot-separated part of its Name.
func (s Spec) ShortName() string {
	if i := strings.LastIndexByte(s.Name, '.'); i >= 0 {
		return s.Name[i+1:]
	}
	return s.Name
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
	// MaxBatch bounds the records applied in one transaction
	// (Config.MaxBatch); 0 takes the projector's default.
	MaxBatch int
	// Shadow, when set, builds a rebuild's projector rather than the
	// live one: see Shadow.
	Shadow *Shadow
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

// Shadow is where a rebuild's projector works instead of the live one's
// places (projections/rebuild).
type Shadow struct {
	// Group is its consumer group, and the key of its offsets, in place
	// of the Spec's Name: the rebuild reads the topics from their start
	// on its own, beside the live projector.
	Group string
	// Schema holds the tables it writes and its offsets (Config.Schema).
	Schema string
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
		cfg := Config[T]{
			Spec: spec, Kafka: d.Kafka, Pool: d.Pool, Members: d.members(spec.Topics), MaxBatch: d.MaxBatch,
			Projection: newProjection(d.Registerer, d.Logger), Registerer: d.Registerer, Logger: d.Logger,
		}
		if d.Shadow != nil {
			cfg.Spec.Name, cfg.Schema = d.Shadow.Group, d.Shadow.Schema
		}
		p, err := New(cfg)
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
