package rebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/migrations"
	"github.com/tmsfleet/tms/projections/projector"
)

// Config configures a rebuild.
type Config struct {
	// ReadModels are the read models to rebuild (projections.All, or a
	// selection of it). Required.
	ReadModels []projector.Registration
	// Kafka is how to reach the brokers. The rebuild's consumers join
	// their groups dynamically, whatever its InstanceID.
	Kafka *kafka.Config
	// Pool is the Postgres pool of the read models, with room for
	// Members connections per read model and a few more (PoolSize).
	Pool *pgxpool.Pool
	// DatabaseURL is the same database's connection string: the shadow
	// tables are made by running the migrations into the shadow schema.
	DatabaseURL string
	// Migrations make the shadow tables; default migrations.FS, the ones
	// that made the live tables. Tests pass their own.
	Migrations fs.FS
	// Members is how many members each read model's rebuild runs in its
	// consumer group (a read model of single-partition topics runs one).
	// Default 3.
	Members int
	// MaxBatch bounds the records applied in one transaction. Default
	// 50,000, the projector's.
	MaxBatch int
	// SwitchLockTimeout bounds each wait for a lock during the switch:
	// for the live projectors' current transactions to end, and for the
	// API's current queries on the tables switched. Meanwhile the live
	// projectors, and new queries on those tables, wait, so it bounds how
	// long the API can stall; past it, the switch is given up and tried
	// again a ProgressInterval later. Default 2 s.
	SwitchLockTimeout time.Duration
	// SwitchWait bounds how long the switch, having paused the live
	// projectors, waits for the rebuild to reach them before it gives up
	// and tries again later. Default 10 s.
	SwitchWait time.Duration
	// ProgressInterval is how often progress is measured, stored and
	// reported, and whether the switch can start is checked. Default 1 s.
	ProgressInterval time.Duration
	// Restart abandons an unfinished rebuild (dropping its shadow tables)
	// instead of resuming it, or instead of refusing to start when it was
	// of other read models.
	Restart bool
	// Report, when set, receives the progress every ProgressInterval and
	// once more at the end. It must return quickly.
	Report func(Progress)
	// Registerer receives the projectors' metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Migrations == nil {
		c.Migrations = migrations.FS
	}
	if c.Members == 0 {
		c.Members = 3
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 50_000
	}
	if c.SwitchLockTimeout == 0 {
		c.SwitchLockTimeout = 2 * time.Second
	}
	if c.SwitchWait == 0 {
		c.SwitchWait = 10 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work, every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.ReadModels) == 0 {
		errs = append(errs, errors.New("rebuild: no read model to rebuild"))
	}
	if c.Kafka == nil || c.Pool == nil || c.DatabaseURL == "" {
		errs = append(errs, errors.New("rebuild: Kafka, Pool and DatabaseURL are required"))
	}
	if c.Members < 1 || c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("rebuild: Members (%d) and MaxBatch (%d) must be at least 1", c.Members, c.MaxBatch))
	}
	if c.SwitchLockTimeout < time.Millisecond || c.SwitchWait < time.Millisecond || c.ProgressInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("rebuild: SwitchLockTimeout (%s), SwitchWait (%s) and ProgressInterval (%s) must be at least 1 ms",
			c.SwitchLockTimeout, c.SwitchWait, c.ProgressInterval))
	}
	seen := map[string]bool{}
	for _, r := range c.ReadModels {
		if err := r.Spec.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("rebuild: read model %s named twice", r.Name))
		}
		seen[r.Name] = true
	}
	return errors.Join(errs...)
}

// PoolSize is the connections a rebuild of n read models with members
// members each needs: one per member, the lock it holds, the switch, and
// the progress.
func PoolSize(n, members int) int32 { return int32(n*members + 3) }
