package vehicles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// MaintenanceConfig configures the upkeep of the positions history: its
// monthly partitions made ahead of time, and retention.
type MaintenanceConfig struct {
	// Pool is the read models' pool. Required.
	Pool *pgxpool.Pool
	// Retention is how long positions are kept: a month is dropped, whole,
	// once its end is more than Retention ago. 0 keeps everything (the
	// default). A month is at least 28 days, so a retention shorter than
	// that still keeps the current and the previous month.
	Retention time.Duration
	// Ahead is how many months after the current one have their partition
	// made in advance, so that the projector never has to make one when a
	// month begins. Default 2.
	Ahead int
	// Interval is the time between two runs; one runs at the start.
	// Default 1 h.
	Interval time.Duration
	// Now is the clock retention counts from. Default time.Now.
	Now func() time.Time
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *MaintenanceConfig) setDefaults() {
	if c.Ahead == 0 {
		c.Ahead = 2
	}
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *MaintenanceConfig) Validate() error {
	var errs []error
	if c.Pool == nil {
		errs = append(errs, errors.New("positions maintenance: a Pool is required"))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("positions maintenance: Retention %s is negative (0 keeps everything)", c.Retention))
	}
	if c.Ahead < 0 || c.Ahead > 120 {
		errs = append(errs, fmt.Errorf("positions maintenance: Ahead %d is not in [0, 120] months", c.Ahead))
	}
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("positions maintenance: Interval %s is shorter than a second", c.Interval))
	}
	return errors.Join(errs...)
}

// Maintenance keeps the positions history: each run makes the partitions
// of the current month and the next Ahead months, and, with a Retention,
// drops the months wholly older than it. One instance at a time does the
// work (a session advisory lock); the others skip their run.
type Maintenance struct {
	cfg     MaintenanceConfig
	log     *slog.Logger
	dropped prometheus.Counter
	failed  prometheus.Counter
}

// NewMaintenance validates cfg and builds the upkeep.
func NewMaintenance(cfg MaintenanceConfig) (*Maintenance, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Maintenance{
		cfg: cfg,
		log: cfg.Logger.With("component", "positions-maintenance"),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_positions_partitions_dropped_total",
			Help: "Months of positions history dropped by retention (TMS_POSITIONS_RETENTION).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_positions_maintenance_failures_total",
			Help: "Runs of the positions history's maintenance that failed (the next run tries again).",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{m.dropped, m.failed} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Run maintains until ctx ends. A failed run is logged and counted, and
// the next one tries again: the history stays readable meanwhile, and
// the projector makes any partition it needs by itself.
func (m *Maintenance) Run(ctx context.Context) error {
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	for {
		if err := m.Maintain(ctx); err != nil && ctx.Err() == nil {
			m.failed.Inc()
			m.log.Error("positions maintenance failed; trying again at the next run", "err", err, "next_in", m.cfg.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// maintenanceLock is the session advisory lock one instance's run holds.
const maintenanceLock = `hashtext('tms positions maintenance')`

// Maintain runs once: partitions ahead, then retention. It returns
// without doing anything while another instance runs.
func (m *Maintenance) Maintain(ctx context.Context) error {
	conn, err := m.cfg.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("positions maintenance: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+maintenanceLock+`)`).Scan(&locked); err != nil {
		return fmt.Errorf("positions maintenance: %w", err)
	}
	if !locked {
		m.log.Debug("another instance maintains the positions history")
		return nil
	}
	defer func() {
		// On a broken connection the lock went with the session.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+maintenanceLock+`)`); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing frees the lock
		}
	}()
	now := m.cfg.Now()
	if err := m.ahead(ctx, conn.Conn(), now); err != nil {
		return err
	}
	if m.cfg.Retention > 0 {
		return m.retain(ctx, conn.Conn(), now)
	}
	return nil
}

// ahead makes the partitions of the current month and the next Ahead.
func (m *Maintenance) ahead(ctx context.Context, conn *pgx.Conn, now time.Time) error {
	first := MonthStart(now)
	months := make([]time.Time, 0, m.cfg.Ahead+1)
	for i := range m.cfg.Ahead + 1 {
		months = append(months, first.AddDate(0, i, 0))
	}
	created, err := EnsurePartitions(ctx, conn, PositionsTable, months...)
	if err != nil {
		return err
	}
	if created > 0 {
		m.log.Info("made positions partitions ahead", "created", created,
			"through", months[len(months)-1].AddDate(0, 1, 0).Format(time.DateOnly))
	}
	return nil
}

// ourPartition matches the names ensure_month_partitions gives.
var ourPartition = regexp.MustCompile(`^` + PositionsTable + `_p[0-9]{6}(bc)?$`)

// retain drops the months that ended more than Retention before now. It
// first moves the history's recorded start (history_retention) past
// them, so that the API and the projector treat them as gone before they
// are, then detaches each with DETACH PARTITION ... CONCURRENTLY (which
// waits for the queries reading it, and blocks no reader or writer of
// other months) and drops it. An interrupted run leaves a partition
// pending detach or a detached table; the next run finishes them.
func (m *Maintenance) retain(ctx context.Context, conn *pgx.Conn, now time.Time) error {
	horizon := now.Add(-m.cfg.Retention)
	parts, err := Partitions(ctx, conn, PositionsTable)
	if err != nil {
		return err
	}
	var old []Partition
	keptFrom := time.Time{}
	for _, p := range parts {
		if !p.To.After(horizon) {
			old = append(old, p)
			if p.To.After(keptFrom) {
				keptFrom = p.To
			}
		}
	}
	if len(old) > 0 {
		if _, err := conn.Exec(ctx, `
			INSERT INTO history_retention (table_name, kept_from, retention, updated_at)
			VALUES ($1, $2, make_interval(secs => $3), $4)
			ON CONFLICT (table_name) DO UPDATE SET
				kept_from = greatest(history_retention.kept_from, EXCLUDED.kept_from),
				retention = EXCLUDED.retention, updated_at = EXCLUDED.updated_at`,
			PositionsTable, keptFrom, m.cfg.Retention.Seconds(), now); err != nil {
			return fmt.Errorf("record the positions history's start: %w", err)
		}
	}
	parent := pgx.Identifier{PositionsTable}.Sanitize()
	for _, p := range old {
		start := time.Now()
		name := pgx.Identifier{p.Name}.Sanitize()
		detach := `ALTER TABLE ` + parent + ` DETACH PARTITION ` + name + ` CONCURRENTLY`
		if p.DetachPending {
			detach = `ALTER TABLE ` + parent + ` DETACH PARTITION ` + name + ` FINALIZE`
		}
		if _, err := conn.Exec(ctx, detach); err != nil {
			return fmt.Errorf("detach %s: %w", p.Name, err)
		}
		if _, err := conn.Exec(ctx, `DROP TABLE `+name); err != nil {
			return fmt.Errorf("drop %s: %w", p.Name, err)
		}
		m.dropped.Inc()
		m.log.Info("dropped a month of positions history older than the retention",
			"partition", p.Name, "from", p.From.UTC(), "to", p.To.UTC(), "rows_estimate", max(p.Rows, 0),
			"retention", m.cfg.Retention, "took", time.Since(start).Round(time.Millisecond))
	}
	return m.dropLeftovers(ctx, conn, horizon)
}

// dropLeftovers drops the tables a run detached but did not drop: tables
// named as month partitions that are no partition any more and whose
// month is older than the horizon.
func (m *Maintenance) dropLeftovers(ctx context.Context, conn *pgx.Conn, horizon time.Time) error {
	rows, err := conn.Query(ctx, `
		SELECT c.relname::text FROM pg_class c
		WHERE c.relkind = 'r' AND NOT c.relispartition AND c.relnamespace = current_schema()::regnamespace
		  AND c.relname LIKE $1`, PositionsTable+`\_p%`)
	if err != nil {
		return fmt.Errorf("find detached months: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find detached months: %w", err)
	}
	for _, name := range names {
		if !ourPartition.MatchString(name) {
			continue
		}
		month, err := time.Parse("200601", name[len(PositionsTable)+2:len(PositionsTable)+8])
		if err != nil {
			continue
		}
		if name[len(name)-2:] == "bc" {
			month = time.Time{} // before the year 1: older than any horizon
		}
		if month.AddDate(0, 1, 0).After(horizon) {
			continue
		}
		if _, err := conn.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("drop detached %s: %w", name, err)
		}
		m.log.Info("dropped a detached month of positions history left by an interrupted run", "table", name)
	}
	return nil
}
