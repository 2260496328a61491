package trips

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/projections/projector"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.positions from the start into tables that
// already hold their rows: empty them first (`tms replay read-models`).
const ProjectionName = "tms.projector.trips"

// Spec is the read model's registration (projections.All): it reads
// tms.positions into trips and stops, and keeps its per-vehicle state,
// recent fixes and snapshots in tables of its own.
var Spec = projector.Spec{
	Name:   ProjectionName,
	Topics: []string{event.TopicPositions},
	Tables: []string{"trips", "stops", "trip_vehicles", "trip_fixes", "trip_snapshots", "trip_backfill"},
}

// snapshotEvery is how often (in fix time) a vehicle's state is kept in
// trip_snapshots: a late fix reads the fixes again from the snapshot
// before it, so at most this much more than the time since it.
const snapshotEvery = 15 * time.Minute

// Settings are what the read model is made with: changing them changes
// its rows (rebuild it then, `tms rebuild trips`).
type Settings struct {
	// Rules cut fixes into trips and stops (TMS_TRIPS_*).
	Rules trip.Rules
	// LateHorizon is how far behind a vehicle's newest fix a late fix is
	// still applied; its trips are settled after that. It bounds the fixes
	// kept per vehicle (trip_fixes). Default 2 h, the job processor's
	// amend horizon, so that a late fix that amends a job revises its
	// trips too.
	LateHorizon time.Duration
	// MaxAhead is how far a fix's time may be ahead of its receipt and
	// still be used: a receiver whose clock runs a day ahead would
	// otherwise make every true fix after it late, beyond the horizon, for
	// a day. Default 5 min.
	MaxAhead time.Duration
}

// DefaultSettings are the settings tms runs with unless told otherwise.
func DefaultSettings() Settings {
	return Settings{Rules: trip.DefaultRules, LateHorizon: 2 * time.Hour, MaxAhead: 5 * time.Minute}
}

// Validate reports settings that cannot work, every problem at once.
func (s Settings) Validate() error {
	errs := []error{s.Rules.Validate()}
	if s.LateHorizon <= 0 {
		errs = append(errs, fmt.Errorf("trips: the late horizon (%s) must be positive", s.LateHorizon))
	}
	if s.MaxAhead < 0 {
		errs = append(errs, fmt.Errorf("trips: the time a fix may be ahead of its receipt (%s) must not be negative", s.MaxAhead))
	}
	return errors.Join(errs...)
}

// Fix is a vehicle's fix as the projection applies it.
type Fix struct {
	Plate string
	trip.Fix
	// Backfill marks a fix `tms backfill g7` appended: history arriving
	// late by nature, which fills gaps beyond the late horizon (see
	// run.backfill).
	Backfill bool
}

// Projection builds the trips read model from tms.positions. Apply is
// safe for concurrent use (the projector's members share it).
type Projection struct {
	s     Settings
	skips *projector.Skips
	fixes *prometheus.CounterVec
	log   *slog.Logger
}

// What became of a fix: the outcome label of tms_trips_fixes_total.
const (
	outInOrder       = "in_order"
	outLate          = "late"
	outDuplicate     = "duplicate"
	outBeyondHorizon = "beyond_horizon"
	outAhead         = "ahead_of_receipt"
	outBackfilled    = "backfilled"
)

// NewProjection builds the projection with settings s, which must be
// valid (Settings.Validate); reg (optional) receives its metrics.
func NewProjection(s Settings, reg prometheus.Registerer, log *slog.Logger) *Projection {
	if log == nil {
		log = slog.Default()
	}
	p := &Projection{
		s: s, skips: projector.NewSkips(ProjectionName, reg, log), log: log.With("projection", ProjectionName),
		fixes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tms_trips_fixes_total",
			Help: "Fixes the trips projection read, by outcome: in_order, late (older than the vehicle's newest: " +
				"its trips worked out again), duplicate (the same fix again), beyond_horizon (later than " +
				"TMS_TRIPS_LATE_HORIZON: not applied), ahead_of_receipt (dated more than TMS_TRIPS_MAX_AHEAD " +
				"after its receipt: not used), backfilled (a backfilled fix later than the horizon, in a gap of the " +
				"vehicle's trips and stops: applied there).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{outInOrder, outLate, outDuplicate, outBeyondHorizon, outAhead, outBackfilled} {
		p.fixes.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(p.fixes)
	}
	return p
}

// Decode implements projector.Projection. Fix times are kept to the
// microsecond, as Postgres keeps them, so that a fix read back from
// trip_fixes is the fix that went through the state.
func (p *Projection) Decode(r *kgo.Record) (Fix, bool) {
	pos, _, source, ok, err := position.DecodeEventSource(r.Value)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return Fix{}, false
	}
	if !ok {
		return Fix{}, false // not a position
	}
	if pos.FixTime.Sub(pos.ReceivedAt) > p.s.MaxAhead {
		p.fixes.WithLabelValues(outAhead).Inc()
		return Fix{}, false
	}
	return Fix{Plate: pos.Plate, Backfill: source == position.BackfillSource, Fix: trip.Fix{
		Time:  pos.FixTime.Truncate(time.Microsecond).UTC(),
		Point: geo.Point{Lat: pos.Lat, Lng: pos.Lng}, SpeedKmh: pos.SpeedKmh,
	}}, true
}

// Apply implements projector.Projection: each vehicle's fixes in record
// order, then every row they changed, in a few statements for the batch.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, fixes []Fix) error {
	byPlate := map[string][]Fix{}
	for _, f := range fixes {
		byPlate[f.Plate] = append(byPlate[f.Plate], f)
	}
	plates := make([]string, 0, len(byPlate))
	for plate := range byPlate {
		plates = append(plates, plate)
	}
	slices.Sort(plates) // one lock order for all writers
	runs, err := p.load(ctx, tx, plates)
	if err != nil {
		return err
	}
	for _, r := range runs {
		for _, f := range byPlate[r.plate] {
			if err := r.take(ctx, tx, f); err != nil {
				return fmt.Errorf("trips of %s: %w", r.plate, err)
			}
		}
		if err := r.finish(); err != nil {
			return fmt.Errorf("trips of %s: %w", r.plate, err)
		}
	}
	return write(ctx, tx, runs, true)
}

// run is one vehicle's part of a batch: its state, and the rows it has
// changed and not yet written.
type run struct {
	p     *Projection
	plate string
	v     trip.Vehicle
	// snaps are the times of its snapshots, stored and new, in order.
	snaps []time.Time

	fixes    []trip.Fix        // to store in trip_fixes
	newSnaps []snapshot        // to store in trip_snapshots
	segs     map[string]segRow // segments to upsert, by id
	order    []string          // their ids, in the order they were made
	dropSegs *time.Time        // stored segments from here on are made again
	dropSnap *time.Time        // stored snapshots after this are taken again
	allSnaps bool              // every stored snapshot is taken again
	prune    *time.Time        // stored fixes and snapshots before this go
	state    []byte            // the state to store, once finished
	// beyond counts the fixes later than the horizon, the first of them
	// at beyondFirst: logged once per batch.
	beyond      int
	beyondFirst time.Time
	// lane is the vehicle's backfill lane, once a backfilled fix beyond
	// the horizon has needed it in the batch (see backfill).
	lane *lane
}

type snapshot struct {
	at    time.Time
	state []byte
}

// load reads the state of each vehicle of plates.
func (p *Projection) load(ctx context.Context, tx pgx.Tx, plates []string) ([]*run, error) {
	runs := make([]*run, len(plates))
	byPlate := make(map[string]*run, len(plates))
	for i, plate := range plates {
		runs[i] = &run{p: p, plate: plate, segs: map[string]segRow{}}
		byPlate[plate] = runs[i]
	}
	rows, err := tx.Query(ctx, `SELECT vehicle, state, snapshots FROM trip_vehicles WHERE vehicle = ANY($1)`, plates)
	if err != nil {
		return nil, fmt.Errorf("read the trip state of %d vehicles: %w", len(plates), err)
	}
	var plate string
	var state []byte
	var snaps []time.Time
	_, err = pgx.ForEachRow(rows, []any{&plate, &state, &snaps}, func() error {
		r := byPlate[plate]
		if err := r.v.UnmarshalBinary(state); err != nil {
			return fmt.Errorf("the trip state of %s: %w", plate, err)
		}
		r.snaps = slices.Clone(snaps)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the trip state of %d vehicles: %w", len(plates), err)
	}
	return runs, nil
}

// take applies one fix of the vehicle, in record order.
func (r *run) take(ctx context.Context, tx pgx.Tx, bf Fix) error {
	f := bf.Fix
	newest := r.v.Newest()
	switch {
	case r.v.Empty() || f.Time.After(newest):
		r.p.fixes.WithLabelValues(outInOrder).Inc()
		return r.add(f, true)
	case f.Time.Equal(newest):
		r.p.fixes.WithLabelValues(outDuplicate).Inc()
		return nil
	case f.Time.Before(newest.Add(-r.p.s.LateHorizon)) && bf.Backfill:
		return r.backfill(ctx, tx, f)
	case f.Time.Before(newest.Add(-r.p.s.LateHorizon)):
		r.p.fixes.WithLabelValues(outBeyondHorizon).Inc()
		if r.beyond++; r.beyond == 1 {
			r.beyondFirst = f.Time
		}
		return nil
	}
	return r.late(ctx, tx, f)
}

// add goes one fix on, in fix-time order, after a snapshot when one is
// due; store says whether the fix is new to trip_fixes.
func (r *run) add(f trip.Fix, store bool) error {
	if len(r.snaps) == 0 || f.Time.Sub(r.snaps[len(r.snaps)-1]) >= snapshotEvery {
		b, err := r.v.MarshalBinary()
		if err != nil {
			return err
		}
		r.snaps = append(r.snaps, f.Time)
		r.newSnaps = append(r.newSnaps, snapshot{at: f.Time, state: b})
	}
	segs, err := r.v.Add(r.p.s.Rules, f)
	if err != nil {
		return err
	}
	for i := range segs {
		r.put(&segs[i])
	}
	if store {
		r.fixes = append(r.fixes, f)
	}
	return nil
}

// put records a segment the vehicle made; one made again in the batch
// keeps the revision it was given.
func (r *run) put(s *trip.Segment) {
	row := toRow(r.plate, s)
	if prev, ok := r.segs[row.id]; ok {
		row.revision, row.revised = prev.revision, prev.revised
	} else {
		r.order = append(r.order, row.id)
	}
	r.segs[row.id] = row
}

// late applies a fix older than the vehicle's newest and within the
// horizon: back to the last snapshot before it, and the kept fixes read
// again from there, the late one in its place. The segments from the one
// open at the snapshot on are made again; each that differs from what it
// was (or is new) takes the next revision.
func (r *run) late(ctx context.Context, tx pgx.Tx, f trip.Fix) error {
	// What this batch has changed so far is written first, the segment in
	// progress included, so that the tables are all there is to read and
	// hold the segments as they were just before the late fix.
	if open, ok := r.v.Open(); ok {
		r.put(&open)
	}
	if err := write(ctx, tx, []*run{r}, false); err != nil {
		return err
	}
	var dup bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM trip_fixes WHERE vehicle = $1 AND fix_time = $2)`,
		r.plate, f.Time).Scan(&dup); err != nil {
		return fmt.Errorf("look for a late fix: %w", err)
	}
	if dup {
		r.p.fixes.WithLabelValues(outDuplicate).Inc()
		return nil
	}
	// The snapshot to go back to: the last one before the fix, or, before
	// them all, the first, which is then the state before any fix.
	i := len(r.snaps) - 1
	for i >= 0 && !r.snaps[i].Before(f.Time) {
		i--
	}
	at := r.snaps[max(i, 0)]
	var state []byte
	if err := tx.QueryRow(ctx, `SELECT state FROM trip_snapshots WHERE vehicle = $1 AND at = $2`, r.plate, at).Scan(&state); err != nil {
		return fmt.Errorf("read the snapshot of %s: %w", at.Format(time.RFC3339Nano), err)
	}
	var v trip.Vehicle
	if err := v.UnmarshalBinary(state); err != nil {
		return fmt.Errorf("the snapshot of %s: %w", at.Format(time.RFC3339Nano), err)
	}
	from := at
	if i < 0 {
		if !v.Empty() {
			// Cannot happen: the horizon keeps a snapshot before any fix
			// it lets in. Counted rather than applied wrongly.
			r.p.fixes.WithLabelValues(outBeyondHorizon).Inc()
			r.p.log.Error("no snapshot before a late fix within the horizon", "vehicle", r.plate, "fix_time", f.Time)
			return nil
		}
		from = f.Time
	}
	kept, err := r.keptFixes(ctx, tx, from)
	if err != nil {
		return err
	}
	since := v.OpenSince()
	old, err := r.stored(ctx, tx, since)
	if err != nil {
		return err
	}
	r.p.fixes.WithLabelValues(outLate).Inc()

	// Snapshots after the one gone back to, and the segments from since
	// on, are made again.
	if i < 0 {
		r.snaps, r.allSnaps = nil, true
	} else {
		r.snaps, r.dropSnap = r.snaps[:i+1], &at
	}
	r.dropSegs, r.v = &since, v
	j := slices.IndexFunc(kept, func(k trip.Fix) bool { return k.Time.After(f.Time) })
	if j < 0 {
		j = len(kept)
	}
	for n, k := range slices.Concat(kept[:j], []trip.Fix{f}, kept[j:]) {
		if err := r.add(k, n == j); err != nil {
			return err
		}
	}
	if open, ok := r.v.Open(); ok {
		r.put(&open)
	}
	r.revise(old)
	return nil
}

// keptFixes reads the vehicle's kept fixes from from on, in time order.
func (r *run) keptFixes(ctx context.Context, tx pgx.Tx, from time.Time) ([]trip.Fix, error) {
	rows, err := tx.Query(ctx, `SELECT fix_time, lat, lng, speed_kmh FROM trip_fixes
		WHERE vehicle = $1 AND fix_time >= $2 ORDER BY fix_time`, r.plate, from)
	if err != nil {
		return nil, fmt.Errorf("read the kept fixes: %w", err)
	}
	kept, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (trip.Fix, error) {
		var k trip.Fix
		err := row.Scan(&k.Time, &k.Point.Lat, &k.Point.Lng, &k.SpeedKmh)
		k.Time = k.Time.UTC()
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the kept fixes: %w", err)
	}
	return kept, nil
}

// stored reads the vehicle's stored segments that start at or after since.
func (r *run) stored(ctx context.Context, tx pgx.Tx, since time.Time) ([]segRow, error) {
	rows, err := tx.Query(ctx, `
		SELECT id::text, 'trip', start_time, start_lat, start_lng, end_time, end_lat, end_lng, open, distance_m,
		       max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m, flags, revision
		FROM trips WHERE vehicle = $1 AND start_time >= $2
		UNION ALL
		SELECT id::text, 'stop', start_time, lat, lng, end_time, 0, 0, open, 0, 0, 0, 0, fixes, 0, 0, 0, flags, revision
		FROM stops WHERE vehicle = $1 AND start_time >= $2`, r.plate, since)
	if err != nil {
		return nil, fmt.Errorf("read the segments to make again: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (segRow, error) {
		var s segRow
		err := row.Scan(&s.id, &s.kind, &s.start.Time, &s.start.Point.Lat, &s.start.Point.Lng, &s.end.Time,
			&s.end.Point.Lat, &s.end.Point.Lng, &s.open, &s.s.DistanceM, &s.s.MaxSpeedKmh, &s.s.MovingS, &s.s.IdleS,
			&s.s.Fixes, &s.s.Noise.FixesUsed, &s.s.Noise.FixesDropped, &s.s.Noise.DistanceDroppedM, &s.flags, &s.revision)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the segments to make again: %w", err)
	}
	return out, nil
}

// revise numbers the revisions of the segments a late fix made again
// (all of r.segs, since it was written just before), against what was
// stored: the same revision when nothing changed, the next when the
// segment changed, and for a segment that is new (a late fix split one,
// or moved its start) one more than the highest revision of the
// segments it overlaps, at least 2.
func (r *run) revise(old []segRow) {
	byID := make(map[string]*segRow, len(old))
	for i := range old {
		byID[old[i].id] = &old[i]
	}
	for id, row := range r.segs {
		switch o := byID[id]; {
		case o != nil && o.same(&row):
			row.revision = o.revision
		case o != nil:
			row.revision = o.revision + 1
		default:
			top := 1
			for _, o := range old {
				if !o.start.Time.After(row.end.Time) && !o.end.Time.Before(row.start.Time) {
					top = max(top, o.revision)
				}
			}
			row.revision = top + 1
		}
		row.revised = true
		r.segs[id] = row
	}
}

// same reports whether two rows of a segment hold the same values.
func (a *segRow) same(b *segRow) bool {
	if a.kind == string(trip.KindStop) {
		// A stop's row keeps only its start's place and its fixes.
		return a.start.Time.Equal(b.start.Time) && a.end.Time.Equal(b.end.Time) && a.start.Point == b.start.Point &&
			a.open == b.open && a.s.Fixes == b.s.Fixes && slices.Equal(a.flags, b.flags)
	}
	return a.start.Time.Equal(b.start.Time) && a.end.Time.Equal(b.end.Time) && a.start.Point == b.start.Point &&
		a.end.Point == b.end.Point && a.open == b.open && a.s == b.s && slices.Equal(a.flags, b.flags)
}

// finish adds the segment in progress, and lets go of the fixes and
// snapshots the horizon no longer needs: those before the last snapshot
// at least the horizon older than the newest fix.
func (r *run) finish() error {
	if r.beyond > 0 {
		r.p.log.Warn("fixes later than the late horizon change no trip", "vehicle", r.plate, "fixes", r.beyond,
			"first_fix_time", r.beyondFirst, "newest", r.v.Newest(), "horizon", r.p.s.LateHorizon)
	}
	if open, ok := r.v.Open(); ok {
		r.put(&open)
	}
	if err := r.finishLane(); err != nil {
		return err
	}
	cut := r.v.Newest().Add(-r.p.s.LateHorizon)
	keep := -1
	for i, at := range r.snaps {
		if !at.After(cut) {
			keep = i
		}
	}
	if keep > 0 {
		p := r.snaps[keep]
		r.prune = &p
		r.snaps = slices.Clone(r.snaps[keep:])
		r.fixes = slices.DeleteFunc(r.fixes, func(f trip.Fix) bool { return f.Time.Before(p) })
		r.newSnaps = slices.DeleteFunc(r.newSnaps, func(s snapshot) bool { return s.at.Before(p) })
	}
	b, err := r.v.MarshalBinary()
	r.state = b
	return err
}

// segRow is a segment as the tables hold it.
type segRow struct {
	id, kind   string
	start, end trip.Place
	open       bool
	s          trip.Stats
	flags      []string
	// revision is what the row is written with when revised (a late fix
	// made it again); otherwise a stored row keeps its own, and a new one
	// is 1.
	revision int
	revised  bool
}

// SegmentID is the id of the kind's segment of vehicle plate that starts
// at start: derived from them, so that it stays the segment's id however
// often it is worked out again.
func SegmentID(kind trip.Kind, plate string, start time.Time) string {
	return event.ID("tms.segment."+string(kind), plate, strconv.FormatInt(start.UnixMicro(), 10))
}

func toRow(plate string, s *trip.Segment) segRow {
	st := s.Stats
	st.DistanceM, st.MaxSpeedKmh, st.MovingS, st.IdleS = round1(st.DistanceM), round1(st.MaxSpeedKmh), round1(st.MovingS), round1(st.IdleS)
	st.Noise.DistanceDroppedM = round1(st.Noise.DistanceDroppedM)
	flags := s.Flags
	if flags == nil {
		flags = []string{}
	}
	return segRow{id: SegmentID(s.Kind, plate, s.Start.Time), kind: string(s.Kind), start: s.Start, end: s.End,
		open: s.Open, s: st, flags: flags, revision: 1}
}

// round1 rounds metres, seconds and km/h to one decimal, as tms's events
// carry them.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// write writes what runs have changed and not yet written; final adds
// each vehicle's state and the pruning of its kept fixes.
func write(ctx context.Context, tx pgx.Tx, runs []*run, final bool) error {
	b := &pgx.Batch{}
	var cut struct {
		plates []string
		at     []time.Time
	}
	var snaps struct {
		plates []string
		at     []time.Time
		states [][]byte
	}
	// Revised rows are written with their revision; the others keep
	// theirs.
	var trips, stops, revisedTrips, revisedStops segColumns
	var states struct {
		plates []string
		states [][]byte
		newest []time.Time
		snaps  []string
	}
	var fixes [][]any
	for _, r := range runs {
		switch {
		case r.allSnaps:
			b.Queue(`DELETE FROM trip_snapshots WHERE vehicle = $1`, r.plate)
		case r.dropSnap != nil:
			b.Queue(`DELETE FROM trip_snapshots WHERE vehicle = $1 AND at > $2`, r.plate, *r.dropSnap)
		}
		for _, s := range r.newSnaps {
			snaps.plates, snaps.at, snaps.states = append(snaps.plates, r.plate), append(snaps.at, s.at), append(snaps.states, s.state)
		}
		if r.dropSegs != nil {
			b.Queue(`DELETE FROM trips WHERE vehicle = $1 AND start_time >= $2`, r.plate, *r.dropSegs)
			b.Queue(`DELETE FROM stops WHERE vehicle = $1 AND start_time >= $2`, r.plate, *r.dropSegs)
		}
		for _, id := range r.order {
			row := r.segs[id]
			switch {
			case row.kind == string(trip.KindTrip) && row.revised:
				revisedTrips.add(r.plate, &row)
			case row.kind == string(trip.KindTrip):
				trips.add(r.plate, &row)
			case row.revised:
				revisedStops.add(r.plate, &row)
			default:
				stops.add(r.plate, &row)
			}
		}
		for _, f := range r.fixes {
			fixes = append(fixes, []any{r.plate, f.Time, f.Point.Lat, f.Point.Lng, f.SpeedKmh})
		}
		if final && r.lane != nil && r.lane.state != nil {
			l := r.lane
			b.Queue(`INSERT INTO trip_backfill (vehicle, gap_from, gap_to, state, newest) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (vehicle) DO UPDATE SET gap_from = EXCLUDED.gap_from, gap_to = EXCLUDED.gap_to,
					state = EXCLUDED.state, newest = EXCLUDED.newest`, r.plate, l.from, l.to, l.state, l.v.Newest())
		}
		if final {
			if r.prune != nil {
				cut.plates, cut.at = append(cut.plates, r.plate), append(cut.at, *r.prune)
			}
			states.plates, states.states = append(states.plates, r.plate), append(states.states, r.state)
			states.newest = append(states.newest, r.v.Newest())
			states.snaps = append(states.snaps, timesLiteral(r.snaps))
		}
		r.newSnaps, r.segs, r.order, r.fixes = nil, map[string]segRow{}, nil, nil
		r.dropSegs, r.dropSnap, r.allSnaps = nil, nil, false
	}
	if len(snaps.plates) > 0 {
		b.Queue(`INSERT INTO trip_snapshots (vehicle, at, state)
			SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bytea[])`, snaps.plates, snaps.at, snaps.states)
	}
	trips.queue(b, tripsUpsert)
	stops.queue(b, stopsUpsert)
	revisedTrips.queue(b, tripsUpsert+revisedSet)
	revisedStops.queue(b, stopsUpsert+revisedSet)
	if len(cut.plates) > 0 {
		b.Queue(`DELETE FROM trip_fixes f USING unnest($1::text[], $2::timestamptz[]) AS c(vehicle, cut)
			WHERE f.vehicle = c.vehicle AND f.fix_time < c.cut`, cut.plates, cut.at)
		b.Queue(`DELETE FROM trip_snapshots s USING unnest($1::text[], $2::timestamptz[]) AS c(vehicle, cut)
			WHERE s.vehicle = c.vehicle AND s.at < c.cut`, cut.plates, cut.at)
	}
	if len(states.plates) > 0 {
		b.Queue(`INSERT INTO trip_vehicles (vehicle, state, newest, snapshots)
			SELECT t.vehicle, t.state, t.newest, t.snaps::timestamptz[]
			FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::text[]) AS t(vehicle, state, newest, snaps)
			ON CONFLICT (vehicle) DO UPDATE SET state = EXCLUDED.state, newest = EXCLUDED.newest, snapshots = EXCLUDED.snapshots`,
			states.plates, states.states, states.newest, states.snaps)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write trips: %w", err)
		}
	}
	if len(fixes) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"trip_fixes"},
			[]string{"vehicle", "fix_time", "lat", "lng", "speed_kmh"}, pgx.CopyFromRows(fixes)); err != nil {
			return fmt.Errorf("keep %d fixes: %w", len(fixes), err)
		}
	}
	return nil
}

// timesLiteral writes times as a Postgres array literal, for a column of
// arrays passed through unnest (which cannot take an array of arrays).
func timesLiteral(ts []time.Time) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = `"` + t.UTC().Format(time.RFC3339Nano) + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// segColumns are segments as the columns of an unnest.
type segColumns struct {
	id, plate, flags                       []string
	start, end                             []time.Time
	startLat, startLng, endLat, endLng     []float64
	open                                   []bool
	distance, maxSpeed, moving, idle, drop []float64
	fixes, used, dropped, revision         []int32
}

func (c *segColumns) add(plate string, r *segRow) {
	c.id, c.plate, c.flags = append(c.id, r.id), append(c.plate, plate), append(c.flags, strings.Join(r.flags, ","))
	c.start, c.end = append(c.start, r.start.Time), append(c.end, r.end.Time)
	c.startLat, c.startLng = append(c.startLat, r.start.Point.Lat), append(c.startLng, r.start.Point.Lng)
	c.endLat, c.endLng = append(c.endLat, r.end.Point.Lat), append(c.endLng, r.end.Point.Lng)
	c.open = append(c.open, r.open)
	c.distance, c.maxSpeed = append(c.distance, r.s.DistanceM), append(c.maxSpeed, r.s.MaxSpeedKmh)
	c.moving, c.idle, c.drop = append(c.moving, r.s.MovingS), append(c.idle, r.s.IdleS), append(c.drop, r.s.Noise.DistanceDroppedM)
	c.fixes, c.used, c.dropped = append(c.fixes, int32(r.s.Fixes)), append(c.used, int32(r.s.Noise.FixesUsed)), append(c.dropped, int32(r.s.Noise.FixesDropped))
	c.revision = append(c.revision, int32(r.revision))
}

func (c *segColumns) queue(b *pgx.Batch, sql string) {
	if len(c.id) == 0 {
		return
	}
	b.Queue(sql, c.id, c.plate, c.start, c.startLat, c.startLng, c.end, c.endLat, c.endLng, c.open,
		c.distance, c.maxSpeed, c.moving, c.idle, c.fixes, c.used, c.dropped, c.drop, c.flags, c.revision)
}

// segUnnest reads segColumns' arrays as rows.
const segUnnest = `unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::float8[], $5::float8[], $6::timestamptz[],
	$7::float8[], $8::float8[], $9::bool[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], $14::int[],
	$15::int[], $16::int[], $17::float8[], $18::text[], $19::int[])
	AS t(id, vehicle, start_time, start_lat, start_lng, end_time, end_lat, end_lng, open, distance_m, max_speed_kmh,
	     moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m, flags, revision)`

const tripsUpsert = `
INSERT INTO trips (id, vehicle, start_time, start_lat, start_lng, end_time, end_lat, end_lng, open, distance_m,
                   max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m, flags, revision)
SELECT id, vehicle, start_time, start_lat, start_lng, end_time, end_lat, end_lng, open, distance_m, max_speed_kmh,
       moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m,
       coalesce(string_to_array(nullif(flags, ''), ','), '{}'), revision
FROM ` + segUnnest + `
ON CONFLICT (id) DO UPDATE SET
	end_time = EXCLUDED.end_time, end_lat = EXCLUDED.end_lat, end_lng = EXCLUDED.end_lng, open = EXCLUDED.open,
	start_lat = EXCLUDED.start_lat, start_lng = EXCLUDED.start_lng,
	distance_m = EXCLUDED.distance_m, max_speed_kmh = EXCLUDED.max_speed_kmh, moving_s = EXCLUDED.moving_s,
	idle_s = EXCLUDED.idle_s, fixes = EXCLUDED.fixes, fixes_used = EXCLUDED.fixes_used,
	fixes_dropped = EXCLUDED.fixes_dropped, distance_dropped_m = EXCLUDED.distance_dropped_m,
	flags = EXCLUDED.flags`

const stopsUpsert = `
INSERT INTO stops (id, vehicle, start_time, end_time, lat, lng, open, fixes, flags, revision)
SELECT id, vehicle, start_time, end_time, start_lat, start_lng, open, fixes,
       coalesce(string_to_array(nullif(flags, ''), ','), '{}'), revision
FROM ` + segUnnest + `
ON CONFLICT (id) DO UPDATE SET
	end_time = EXCLUDED.end_time, lat = EXCLUDED.lat, lng = EXCLUDED.lng, open = EXCLUDED.open,
	fixes = EXCLUDED.fixes, flags = EXCLUDED.flags`

// revisedSet is what an upsert of revised rows adds: their revision, which
// a late fix numbered. Other rows keep the revision stored.
const revisedSet = `, revision = EXCLUDED.revision`
