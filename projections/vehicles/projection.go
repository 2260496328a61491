package vehicles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/projections/projector"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.positions from the start.
const ProjectionName = "tms.projector.vehicles"

// Spec is the read model's registration (projections.All): it reads
// tms.positions into positions and vehicles.
var Spec = projector.Spec{
	Name:   ProjectionName,
	Topics: []string{event.TopicPositions},
	Tables: []string{"positions", "vehicles"},
	Reads:  []string{"history_retention"},
}

// Projection builds positions and vehicles from tms.positions.
type Projection struct {
	skips *projector.Skips
	log   *slog.Logger
	// months are those known to have a partition of positions.
	months monthSet
	// beforeRetention counts the fixes not stored because retention has
	// dropped their month.
	beforeRetention prometheus.Counter
}

// NewProjection builds the projection; reg (optional) receives the count
// of records it could not read or did not store.
func NewProjection(reg prometheus.Registerer, log *slog.Logger) *Projection {
	if log == nil {
		log = slog.Default()
	}
	p := &Projection{
		skips: projector.NewSkips(ProjectionName, reg, log),
		log:   log.With("projection", ProjectionName),
		beforeRetention: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tms_positions_before_retention_total",
			Help: "Fixes not stored because they are older than the positions history kept (TMS_POSITIONS_RETENTION).",
		}),
	}
	if reg != nil {
		reg.MustRegister(p.beforeRetention)
	}
	return p
}

// Decode implements projector.Projection.
func (p *Projection) Decode(r *kgo.Record) (position.Position, bool) {
	pos, _, ok, err := position.DecodeEvent(r.Value)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return position.Position{}, false
	}
	return pos, ok // other event types are not ours
}

// Apply implements projector.Projection. A fix is stored once: one
// repeated within the batch, or already stored (a redelivery), adds
// nothing. Vehicles take their latest fix by fix time, so a late, older
// fix never replaces a newer one, and their counts grow by the fixes
// actually stored.
//
// Fixes are written with COPY, the fastest way into Postgres, under a
// savepoint: COPY cannot skip a fix that is already stored, so when one
// is (rare: only after a redelivery), the savepoint is rolled back and the
// batch goes in with INSERT ... ON CONFLICT DO NOTHING instead, which
// reports the fixes it stored.
//
// Positions are partitioned by month: a fix of a month the projection
// has not written yet has its partition created first, in the batch's
// transaction (EnsurePartitions). A fix older than the history retention
// has kept (HistoryFrom) is not stored, and is counted and logged: its
// month is gone, and a replay of the topic must not bring it back.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, fixes []position.Position) error {
	err := p.apply(ctx, tx, fixes)
	if err != nil {
		// A partition this transaction created goes with it.
		p.months.forget()
	}
	return err
}

func (p *Projection) apply(ctx context.Context, tx pgx.Tx, fixes []position.Position) error {
	fixes = unique(fixes)
	fixes, err := p.retained(ctx, tx, fixes)
	if err != nil {
		return err
	}
	missing := p.months.missing(func(yield func(time.Time) bool) {
		for i := range fixes {
			if !yield(fixes[i].FixTime) {
				return
			}
		}
	})
	if len(missing) > 0 {
		if _, err := EnsurePartitions(ctx, tx, PositionsTable, missing...); err != nil {
			return err
		}
		p.months.add(missing)
	}
	stored, err := copyPositions(ctx, tx, fixes)
	if errors.Is(err, errNoPartition) {
		// The months known are not all there: ask again about every month
		// of the batch, and forget the rest.
		p.months.forget()
		months := make([]time.Time, len(fixes))
		for i := range fixes {
			months[i] = fixes[i].FixTime
		}
		if _, err := EnsurePartitions(ctx, tx, PositionsTable, months...); err != nil {
			return err
		}
		stored, err = copyPositions(ctx, tx, fixes)
	}
	if err != nil {
		return err
	}
	return upsertVehicles(ctx, tx, fold(stored))
}

// retained drops the fixes older than the history kept.
func (p *Projection) retained(ctx context.Context, tx pgx.Tx, fixes []position.Position) ([]position.Position, error) {
	from, ok, err := HistoryFrom(ctx, tx, PositionsTable)
	if err != nil || !ok {
		return fixes, err
	}
	if !slices.ContainsFunc(fixes, func(f position.Position) bool { return f.FixTime.Before(from) }) {
		return fixes, nil
	}
	kept := fixes[:0:0]
	var oldest time.Time
	for _, f := range fixes {
		if f.FixTime.Before(from) {
			if oldest.IsZero() || f.FixTime.Before(oldest) {
				oldest = f.FixTime
			}
			continue
		}
		kept = append(kept, f)
	}
	if n := len(fixes) - len(kept); n > 0 {
		p.beforeRetention.Add(float64(n))
		p.log.Info("fixes older than the positions history kept are not stored",
			"fixes", n, "oldest", oldest.UTC(), "history_from", from.UTC())
	}
	return kept, nil
}

type fixKey struct {
	plate string
	at    time.Time
}

// unique drops fixes repeated within the batch, keeping the first.
func unique(fixes []position.Position) []position.Position {
	seen := make(map[fixKey]struct{}, len(fixes))
	out := fixes[:0:0]
	for _, f := range fixes {
		k := fixKey{f.Plate, f.FixTime.UTC()}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, f)
	}
	return out
}

var positionColumns = []string{"plate", "fix_time", "received_at", "lat", "lng", "speed_kmh", "course_deg", "flags"}

// copyPositions stores fixes and returns those it stored (all of them
// unless some were stored before).
func copyPositions(ctx context.Context, tx pgx.Tx, fixes []position.Position) ([]position.Position, error) {
	if _, err := tx.Exec(ctx, "SAVEPOINT copy_positions"); err != nil {
		return nil, err
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"positions"}, positionColumns, pgx.CopyFromSlice(len(fixes), func(i int) ([]any, error) {
		f := &fixes[i]
		flags := f.Flags
		if flags == nil {
			flags = []string{}
		}
		return []any{f.Plate, f.FixTime, f.ReceivedAt, f.Lat, f.Lng, f.SpeedKmh, f.Course, flags}, nil
	}))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return fixes, nil
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
	case errors.As(err, &pgErr) && pgErr.Code == "23514": // check_violation: positions has no check but its partitions' bounds
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT copy_positions"); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("copy %d positions: %w", len(fixes), errNoPartition)
	default:
		return nil, fmt.Errorf("copy %d positions: %w", len(fixes), err)
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT copy_positions"); err != nil {
		return nil, err
	}
	return insertNew(ctx, tx, fixes)
}

// errNoPartition is a copy that found a month without its partition,
// which the projection believed was there: `tms rebuild` has put new
// tables in the place of the ones it knew (without the months made
// ahead), or someone dropped one.
var errNoPartition = errors.New("a fix's month has no partition of positions")

// insertNew stores the fixes not stored yet and returns them.
func insertNew(ctx context.Context, tx pgx.Tx, fixes []position.Position) ([]position.Position, error) {
	n := len(fixes)
	plates, flags := make([]string, n), make([]string, n)
	at, received := make([]time.Time, n), make([]time.Time, n)
	lat, lng, speed, course := make([]float64, n), make([]float64, n), make([]float64, n), make([]*float64, n)
	for i, f := range fixes {
		plates[i], at[i], received[i] = f.Plate, f.FixTime, f.ReceivedAt
		lat[i], lng[i], speed[i], course[i] = f.Lat, f.Lng, f.SpeedKmh, f.Course
		flags[i] = strings.Join(f.Flags, ",") // flag codes hold no commas
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags)
		SELECT t.plate, t.fix_time, t.received_at, t.lat, t.lng, t.speed_kmh, t.course_deg,
		       coalesce(string_to_array(nullif(t.flags, ''), ','), '{}')
		FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::float8[], $5::float8[], $6::float8[],
		            $7::float8[], $8::text[])
		     AS t(plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags)
		ON CONFLICT DO NOTHING
		RETURNING plate, fix_time`, plates, at, received, lat, lng, speed, course, flags)
	if err != nil {
		return nil, fmt.Errorf("insert %d positions: %w", n, err)
	}
	isStored := make(map[fixKey]bool)
	var k fixKey
	if _, err := pgx.ForEachRow(rows, []any{&k.plate, &k.at}, func() error {
		isStored[fixKey{k.plate, k.at.UTC()}] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("insert %d positions: %w", n, err)
	}
	var stored []position.Position
	for _, f := range fixes {
		if isStored[fixKey{f.Plate, f.FixTime.UTC()}] {
			stored = append(stored, f)
		}
	}
	return stored, nil
}

// vehicleDelta is what one batch changes of one vehicle.
type vehicleDelta struct {
	latest              position.Position
	firstSeen, lastSeen time.Time
	count               int64
}

// fold reduces stored fixes to one change per vehicle, in plate order
// (one lock order for all writers).
func fold(stored []position.Position) []vehicleDelta {
	byPlate := make(map[string]*vehicleDelta, len(stored))
	order := make([]string, 0)
	for _, f := range stored {
		d, ok := byPlate[f.Plate]
		if !ok {
			d = &vehicleDelta{latest: f, firstSeen: f.ReceivedAt, lastSeen: f.ReceivedAt}
			byPlate[f.Plate] = d
			order = append(order, f.Plate)
		}
		d.count++
		if f.FixTime.After(d.latest.FixTime) {
			d.latest = f
		}
		if f.ReceivedAt.Before(d.firstSeen) {
			d.firstSeen = f.ReceivedAt
		}
		if f.ReceivedAt.After(d.lastSeen) {
			d.lastSeen = f.ReceivedAt
		}
	}
	slices.Sort(order)
	out := make([]vehicleDelta, len(order))
	for i, plate := range order {
		out[i] = *byPlate[plate]
	}
	return out
}

// upsertVehiclesSQL folds each vehicle's change into its row: the newer
// fix by fix time wins, counts add up.
const upsertVehiclesSQL = `
INSERT INTO vehicles AS v (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags,
                           first_seen, last_seen, positions_count)
SELECT t.plate, t.fix_time, t.received_at, t.lat, t.lng, t.speed_kmh, t.course_deg,
       coalesce(string_to_array(nullif(t.flags, ''), ','), '{}'), t.first_seen, t.last_seen, t.n
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::float8[], $5::float8[], $6::float8[],
            $7::float8[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::bigint[])
     AS t(plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags, first_seen, last_seen, n)
ON CONFLICT (plate) DO UPDATE SET
	fix_time    = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.fix_time    ELSE v.fix_time    END,
	received_at = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.received_at ELSE v.received_at END,
	lat         = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.lat         ELSE v.lat         END,
	lng         = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.lng         ELSE v.lng         END,
	speed_kmh   = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.speed_kmh   ELSE v.speed_kmh   END,
	course_deg  = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.course_deg  ELSE v.course_deg  END,
	flags       = CASE WHEN EXCLUDED.fix_time > v.fix_time THEN EXCLUDED.flags       ELSE v.flags       END,
	first_seen  = least(v.first_seen, EXCLUDED.first_seen),
	last_seen   = greatest(v.last_seen, EXCLUDED.last_seen),
	positions_count = v.positions_count + EXCLUDED.positions_count`

func upsertVehicles(ctx context.Context, tx pgx.Tx, deltas []vehicleDelta) error {
	n := len(deltas)
	if n == 0 {
		return nil
	}
	plates, flags := make([]string, n), make([]string, n)
	at, received, first, last := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	lat, lng, speed, course := make([]float64, n), make([]float64, n), make([]float64, n), make([]*float64, n)
	counts := make([]int64, n)
	for i, d := range deltas {
		f := d.latest
		plates[i], at[i], received[i] = f.Plate, f.FixTime, f.ReceivedAt
		lat[i], lng[i], speed[i], course[i] = f.Lat, f.Lng, f.SpeedKmh, f.Course
		flags[i] = strings.Join(f.Flags, ",")
		first[i], last[i], counts[i] = d.firstSeen, d.lastSeen, d.count
	}
	if _, err := tx.Exec(ctx, upsertVehiclesSQL, plates, at, received, lat, lng, speed, course, flags, first, last, counts); err != nil {
		return fmt.Errorf("update %d vehicles: %w", n, err)
	}
	return nil
}
