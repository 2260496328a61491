package trips

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tmsfleet/tms/domain/trip"
)

// A backfilled fix later than the late horizon cannot go through the
// vehicle's state (which is past it), nor be applied from a snapshot (the
// fixes after it are let go). What it can fill is a gap: a time no trip
// or stop of the vehicle covers, as a silence longer than the trip gap
// leaves (nothing is made of a silence), which is what a backfill fills
// when the service was down or the device buffered. Such fixes go
// through a state of their own, the vehicle's backfill lane (table
// trip_backfill): the gap's bounds (the end of the segment before it and
// the start of the one after, either missing) and a trip.Vehicle that
// reads the gap's backfilled fixes in order, as `tms backfill g7` sends
// them. Its segments are written as any other (ids from their start), the
// one in progress closed at its last fix: a gap's segments never overlap
// the segments around it, and the gap's end is a silence as the live
// state saw it. A backfilled fix in a time a segment covers, or not after
// the lane's newest, changes nothing (counted beyond_horizon and
// duplicate); a fix in another gap starts the lane afresh there.
//
// Like everything here, this depends only on the vehicle's records in
// offset order: a rebuild makes the same lanes and the same rows.

// lane is a vehicle's backfill lane.
type lane struct {
	// from and to bound the gap (exclusive); nil is unbounded.
	from, to *time.Time
	v        trip.Vehicle
	// state is the lane to store at the end of the batch; nil when the
	// batch did not change it.
	state []byte
}

func (l *lane) holds(t time.Time) bool {
	return (l.from == nil || t.After(*l.from)) && (l.to == nil || t.Before(*l.to))
}

// backfill applies a backfilled fix later than the horizon, in the gap
// that holds it.
func (r *run) backfill(ctx context.Context, tx pgx.Tx, f trip.Fix) error {
	if r.lane == nil {
		l, err := loadLane(ctx, tx, r.plate)
		if err != nil {
			return err
		}
		r.lane = l
	}
	if r.lane.v.Empty() || !r.lane.holds(f.Time) {
		// Another gap, or the first: what this batch has made so far is
		// written first, so that the tables show every segment.
		if open, ok := r.v.Open(); ok {
			r.put(&open)
		}
		if err := r.closeLaneSegment(); err != nil {
			return err
		}
		if err := write(ctx, tx, []*run{r}, false); err != nil {
			return err
		}
		from, to, covered, err := gapAt(ctx, tx, r.plate, f.Time)
		if err != nil {
			return err
		}
		if covered {
			r.p.fixes.WithLabelValues(outBeyondHorizon).Inc()
			if r.beyond++; r.beyond == 1 {
				r.beyondFirst = f.Time
			}
			return nil
		}
		r.lane = &lane{from: from, to: to}
	}
	if !r.lane.v.Empty() && !f.Time.After(r.lane.v.Newest()) {
		r.p.fixes.WithLabelValues(outDuplicate).Inc()
		return nil
	}
	segs, err := r.lane.v.Add(r.p.s.Rules, f)
	if err != nil {
		return err
	}
	for i := range segs {
		r.put(&segs[i])
	}
	r.lane.state = []byte{} // changed: stored at the end of the batch
	r.p.fixes.WithLabelValues(outBackfilled).Inc()
	return nil
}

// closeLaneSegment puts the lane's segment in progress, closed at its
// last fix: the gap ends in a silence, and more backfilled fixes of the
// gap update it in place (its start, so its id, stays).
func (r *run) closeLaneSegment() error {
	if r.lane == nil || r.lane.v.Empty() {
		return nil
	}
	if open, ok := r.lane.v.Open(); ok {
		open.Open = false
		r.put(&open)
	}
	return nil
}

// finishLane puts the lane's segment in progress and its state, for the
// batch's final write.
func (r *run) finishLane() error {
	if r.lane == nil || r.lane.state == nil {
		return nil
	}
	if err := r.closeLaneSegment(); err != nil {
		return err
	}
	b, err := r.lane.v.MarshalBinary()
	if err != nil {
		return err
	}
	r.lane.state = b
	return nil
}

// loadLane reads a vehicle's backfill lane; an empty one when it has
// none.
func loadLane(ctx context.Context, tx pgx.Tx, plate string) (*lane, error) {
	l := &lane{}
	var state []byte
	err := tx.QueryRow(ctx, `SELECT gap_from, gap_to, state FROM trip_backfill WHERE vehicle = $1`, plate).Scan(&l.from, &l.to, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the backfill lane of %s: %w", plate, err)
	}
	if err := l.v.UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("the backfill lane of %s: %w", plate, err)
	}
	return l, nil
}

// gapAt finds the gap of the vehicle's segments that holds t: the end of
// the last segment that starts at or before t, and the start of the first
// after it (nil when there is none); covered when that last segment
// reaches t. Segments of a vehicle never overlap, so the last to start is
// the last to end.
func gapAt(ctx context.Context, tx pgx.Tx, plate string, t time.Time) (from, to *time.Time, covered bool, err error) {
	err = tx.QueryRow(ctx, `
		SELECT (SELECT max(e) FROM (
		            (SELECT end_time FROM trips WHERE vehicle = $1 AND start_time <= $2 ORDER BY start_time DESC LIMIT 1)
		            UNION ALL
		            (SELECT end_time FROM stops WHERE vehicle = $1 AND start_time <= $2 ORDER BY start_time DESC LIMIT 1)) AS b(e)),
		       (SELECT min(s) FROM (
		            (SELECT start_time FROM trips WHERE vehicle = $1 AND start_time > $2 ORDER BY start_time LIMIT 1)
		            UNION ALL
		            (SELECT start_time FROM stops WHERE vehicle = $1 AND start_time > $2 ORDER BY start_time LIMIT 1)) AS a(s))`,
		plate, t).Scan(&from, &to)
	if err != nil {
		return nil, nil, false, fmt.Errorf("find the gap of %s at %s: %w", plate, t.Format(time.RFC3339Nano), err)
	}
	return from, to, from != nil && !from.Before(t), nil
}
