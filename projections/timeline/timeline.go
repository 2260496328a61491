package timeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// Query is a stretch of one vehicle's history: its events with their
// time in [From, To).
type Query struct {
	Vehicle  string
	From, To time.Time
}

// Item is one event of a timeline, as it was on its topic (see the
// package documentation for how each kind is rebuilt).
type Item struct {
	Event event.Envelope
}

// Time is when the item happened: its event's time.
func (it *Item) Time() time.Time { return it.Event.Time }

// Source reads the read models a page at a time; *Store reads them from
// Postgres. Every method must honour ctx and return rows in the order its
// query states, after the query's cursor, at most its limit.
type Source interface {
	// Track is vehicles.Store.Track: fixes by fix time.
	Track(ctx context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error)
	// Around is vehicles.Store.Around: the last fix before from and the
	// first after to.
	Around(ctx context.Context, plate string, from, to time.Time) (before, after *vehicles.Fix, err error)
	// Entries and Exits are visits.Store's: entries (exits) by time.
	Entries(ctx context.Context, q visits.TimelineQuery) ([]visits.Visit, error)
	Exits(ctx context.Context, q visits.TimelineQuery) ([]visits.Visit, error)
	// JobEvents is jobs.Store.Timeline: job events by (time, kind, job,
	// stop).
	JobEvents(ctx context.Context, q jobs.TimelineQuery) ([]jobs.TimelineEvent, error)
}

// Reader streams one Query's timeline. It reads nothing until Next is
// called, and then only the pages it needs for the next item. It is not
// safe for concurrent use.
type Reader struct {
	src  Source
	q    Query
	rows int

	opened bool
	// last is the last fix read (at first, the one before the range);
	// beyond is the first after the range: what events are placed
	// between.
	last, beyond *vehicles.Fix
	fixes        stream[vehicles.Fix]
	entries      stream[visits.Visit]
	exits        stream[visits.Visit]
	jobs         stream[jobs.TimelineEvent]
	// alert is the hazard alert owed after the entry just returned.
	alert *Item
}

// MinRows is the least page size a Reader takes.
const MinRows = 2

// NewReader reads q's timeline from src, at most rows rows a page per
// stream (at least MinRows).
func NewReader(src Source, q Query, rows int) *Reader {
	rows = max(rows, MinRows)
	r := &Reader{src: src, q: q, rows: rows}
	r.fixes = stream[vehicles.Fix]{limit: rows, fetch: func(ctx context.Context, after *vehicles.Fix) ([]vehicles.Fix, error) {
		tq := vehicles.TrackQuery{Plate: q.Vehicle, From: q.From, To: q.To, Limit: rows}
		if after != nil {
			t := after.FixTime
			tq.After = &t
		}
		return src.Track(ctx, tq)
	}}
	visitPage := func(read func(context.Context, visits.TimelineQuery) ([]visits.Visit, error), at func(*visits.Visit) time.Time) func(context.Context, *visits.Visit) ([]visits.Visit, error) {
		return func(ctx context.Context, after *visits.Visit) ([]visits.Visit, error) {
			vq := visits.TimelineQuery{Vehicle: q.Vehicle, From: q.From, To: q.To, Limit: rows}
			if after != nil {
				vq.After = &visits.TimeCursor{At: at(after), VisitID: after.VisitID}
			}
			return read(ctx, vq)
		}
	}
	r.entries = stream[visits.Visit]{limit: rows, fetch: visitPage(src.Entries, func(v *visits.Visit) time.Time { return v.EnteredAt })}
	r.exits = stream[visits.Visit]{limit: rows, fetch: visitPage(src.Exits, func(v *visits.Visit) time.Time { return *v.ExitedAt })}
	r.jobs = stream[jobs.TimelineEvent]{limit: rows, fetch: func(ctx context.Context, after *jobs.TimelineEvent) ([]jobs.TimelineEvent, error) {
		jq := jobs.TimelineQuery{Vehicle: q.Vehicle, From: q.From, To: q.To, Limit: rows}
		if after != nil {
			jq.After = &jobs.TimelineCursor{At: after.At, Kind: after.Kind, JobID: after.JobID, Stop: after.Stop}
		}
		return src.JobEvents(ctx, jq)
	}}
	return r
}

// Ranks of the kinds of item at equal times (see the package
// documentation).
const (
	rankPosition = iota
	rankExit
	rankEntry
	rankJob // + jobs.EventKind
)

// Next returns the next item, or io.EOF after the last. An error other
// than io.EOF leaves the Reader where it was: Next may be called again.
func (r *Reader) Next(ctx context.Context) (Item, error) {
	if r.alert != nil {
		it := *r.alert
		r.alert = nil
		return it, nil
	}
	if !r.opened {
		// The fixes on either side of the range place the events near its
		// ends. Fix times are stored to the microsecond: the first fix
		// after the range is the first at or after To.
		before, after, err := r.src.Around(ctx, r.q.Vehicle, r.q.From, r.q.To.Add(-time.Microsecond))
		if err != nil {
			return Item{}, fmt.Errorf("timeline of %s: %w", r.q.Vehicle, err)
		}
		r.last, r.beyond, r.opened = before, after, true
	}
	fix, err := r.fixes.head(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("timeline of %s: positions: %w", r.q.Vehicle, err)
	}
	exit, err := r.exits.head(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("timeline of %s: exits: %w", r.q.Vehicle, err)
	}
	entry, err := r.entries.head(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("timeline of %s: entries: %w", r.q.Vehicle, err)
	}
	je, err := r.jobs.head(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("timeline of %s: job events: %w", r.q.Vehicle, err)
	}

	// The earliest head by (time, rank, key).
	best := -1
	var bestKey sortKey
	consider := func(i int, k sortKey) {
		if best < 0 || k.less(bestKey) {
			best, bestKey = i, k
		}
	}
	if fix != nil {
		consider(0, sortKey{at: fix.FixTime, rank: rankPosition})
	}
	if exit != nil {
		consider(1, sortKey{at: *exit.ExitedAt, rank: rankExit, id: exit.VisitID})
	}
	if entry != nil {
		consider(2, sortKey{at: entry.EnteredAt, rank: rankEntry, id: entry.VisitID})
	}
	if je != nil {
		consider(3, sortKey{at: je.At, rank: rankJob + int(je.Kind), id: je.JobID, stop: je.Stop})
	}
	switch best {
	case -1:
		return Item{}, io.EOF
	case 0:
		r.fixes.advance()
		f := *fix
		r.last = &f
		e, err := positionEvent(r.q.Vehicle, &f)
		return Item{Event: e}, err
	case 1:
		r.exits.advance()
		e, err := visitEvent(exit, false, r.placeAt(*exit.ExitedAt, fix))
		return Item{Event: e}, err
	case 2:
		r.entries.advance()
		p := r.placeAt(entry.EnteredAt, fix)
		e, err := visitEvent(entry, true, p)
		if err != nil {
			return Item{}, err
		}
		if alert, ok, err := hazardAlert(entry, p); err != nil {
			return Item{}, err
		} else if ok {
			r.alert = &Item{Event: alert}
		}
		return Item{Event: e}, nil
	default:
		r.jobs.advance()
		e, err := jobEvent(je, func() *point { return r.placeAt(je.At, fix) })
		return Item{Event: e}, err
	}
}

// placeAt is where the vehicle was at t, interpolated by time between the
// last fix read and next (the next fix of the range, or nil: then the
// first after it); nil when there is no fix on either side.
func (r *Reader) placeAt(t time.Time, next *vehicles.Fix) *point {
	if next == nil {
		next = r.beyond
	}
	a, b := r.last, next
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		return &point{b.Lat, b.Lng}
	case b == nil || !b.FixTime.After(a.FixTime):
		return &point{a.Lat, a.Lng}
	}
	span := b.FixTime.Sub(a.FixTime).Seconds()
	f := min(max(t.Sub(a.FixTime).Seconds()/span, 0), 1)
	return &point{a.Lat + f*(b.Lat-a.Lat), a.Lng + f*(b.Lng-a.Lng)}
}

type point struct{ lat, lng float64 }

// sortKey orders the heads of the streams.
type sortKey struct {
	at   time.Time
	rank int
	id   string
	stop int
}

func (k sortKey) less(o sortKey) bool {
	if !k.at.Equal(o.at) {
		return k.at.Before(o.at)
	}
	if k.rank != o.rank {
		return k.rank < o.rank
	}
	if c := strings.Compare(k.id, o.id); c != 0 {
		return c < 0
	}
	return k.stop < o.stop
}

// stream is one read model's rows in order, a page at a time.
type stream[T any] struct {
	limit int
	fetch func(ctx context.Context, after *T) ([]T, error)
	rows  []T
	i     int
	// done: the last page was short, there is nothing after it.
	done bool
}

// head returns the next row, reading the next page when the current one
// is used up; nil at the end.
func (s *stream[T]) head(ctx context.Context) (*T, error) {
	if s.i < len(s.rows) {
		return &s.rows[s.i], nil
	}
	if s.done {
		return nil, nil
	}
	var after *T
	if n := len(s.rows); n > 0 {
		last := s.rows[n-1]
		after = &last
	}
	rows, err := s.fetch(ctx, after)
	if err != nil {
		return nil, err
	}
	if len(rows) > s.limit {
		return nil, errors.New("a page larger than asked for")
	}
	if len(rows) == 0 {
		// Keep the last row: it is the cursor should the stream be asked
		// again.
		s.done = true
		return nil, nil
	}
	s.rows, s.i, s.done = rows, 0, len(rows) < s.limit
	return &s.rows[0], nil
}

func (s *stream[T]) advance() { s.i++ }
