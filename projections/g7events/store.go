package g7events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/g7event"
)

// Event is one G7 event as the read model holds it.
type Event struct {
	ID         string
	Vehicle    string
	Kind       g7event.Kind
	Open       bool
	Start      time.Time
	End        *time.Time
	G7Seconds  *float64
	Lat, Lng   float64
	EndLat     *float64
	EndLng     *float64
	PushTime   *time.Time
	ReceivedAt time.Time
	// Version is the envelope id of the report the row holds.
	Version string
}

// Cursor is a position in the start order of events: the last event of
// the previous page.
type Cursor struct {
	Start time.Time
	ID    string
}

// Query selects one vehicle's events that overlap [From, To): started
// before To, and still open or ended at or after From. They come in
// (start, id) order.
type Query struct {
	Vehicle  string
	From, To time.Time
	// Kinds, when set, keeps only events of these kinds.
	Kinds []g7event.Kind
	// After is the keyset cursor: only events after it in the order.
	After *Cursor
	// Limit caps the result (required).
	Limit int
}

// Store reads the g7_events read model.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore reads through pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const fields = `id, vehicle, kind, open, start_time, end_time, g7_seconds, lat, lng, end_lat, end_lng,
	push_time, received_at, version`

const columns = `id::text, vehicle, kind, open, start_time, end_time, g7_seconds, lat, lng, end_lat, end_lng,
	push_time, received_at, version::text`

func scan(r pgx.CollectableRow) (Event, error) {
	var e Event
	var kind string
	err := r.Scan(&e.ID, &e.Vehicle, &kind, &e.Open, &e.Start, &e.End, &e.G7Seconds, &e.Lat, &e.Lng, &e.EndLat, &e.EndLng,
		&e.PushTime, &e.ReceivedAt, &e.Version)
	e.Kind = g7event.Kind(kind)
	return e, err
}

// List returns the events q selects.
func (s *Store) List(ctx context.Context, q Query) ([]Event, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("list g7 events: a limit is required")
	}
	args := []any{q.Vehicle, q.From, q.To, q.Limit}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var filter strings.Builder
	if len(q.Kinds) > 0 {
		kinds := make([]string, len(q.Kinds))
		for i, k := range q.Kinds {
			kinds[i] = string(k)
		}
		filter.WriteString(" AND kind = ANY(" + arg(kinds) + ")")
	}
	if q.After != nil {
		filter.WriteString(fmt.Sprintf(" AND (start_time, id) > (%s, %s::uuid)", arg(q.After.Start), arg(q.After.ID)))
	}
	// The events that began in the window, and those in progress when it
	// began (ended after its start, or open), each part a range scan of
	// an index of its own (see the migration).
	part := func(window string) string {
		return `(SELECT ` + fields + ` FROM g7_events WHERE vehicle = $1 AND ` + window + filter.String() +
			` ORDER BY start_time, id LIMIT $4)`
	}
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM (`+
		part(`start_time >= $2 AND start_time < $3`)+` UNION ALL `+
		part(`start_time < $2 AND end_time >= $2`)+` UNION ALL `+
		part(`start_time < $2 AND open`)+`) e ORDER BY start_time, id LIMIT $4`, args...)
	if err != nil {
		return nil, fmt.Errorf("list g7 events: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("list g7 events: %w", err)
	}
	return out, nil
}
