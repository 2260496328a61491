package visits

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TimeCursor is a position in the time order of a vehicle's entries or
// exits: the last one of the previous page.
type TimeCursor struct {
	At      time.Time
	VisitID string
}

// TimelineQuery selects one vehicle's entries (or exits) with their time
// in [From, To), in time order, ties by visit id: the station events of a
// vehicle's replayed history (projections/timeline), read a page at a
// time.
type TimelineQuery struct {
	Vehicle  string
	From, To time.Time
	// After is the keyset cursor: only entries (exits) after it.
	After *TimeCursor
	// Limit caps the result (required).
	Limit int
}

// Entries returns the visits q selects by their entry time. Each page is
// a range scan of visits_vehicle_entered.
func (s *Store) Entries(ctx context.Context, q TimelineQuery) ([]Visit, error) {
	return s.timeline(ctx, "entered_at", q)
}

// Exits returns the closed visits q selects by their exit time. Each page
// is a range scan of visits_vehicle_exited.
func (s *Store) Exits(ctx context.Context, q TimelineQuery) ([]Visit, error) {
	return s.timeline(ctx, "exited_at", q)
}

// timeline pages the visits by column (entered_at or exited_at).
func (s *Store) timeline(ctx context.Context, column string, q TimelineQuery) ([]Visit, error) {
	if q.Limit < 1 {
		return nil, errors.New("visits of a timeline: a limit is required")
	}
	args := []any{q.Vehicle, q.From, q.To, q.Limit}
	after := ""
	if q.After != nil {
		args = append(args, q.After.At, q.After.VisitID)
		after = ` AND (` + column + `, visit_id) > ($5, $6::uuid)`
	}
	rows, err := s.pool.Query(ctx, `SELECT `+visitColumns+` FROM visits
		WHERE vehicle = $1 AND `+column+` >= $2 AND `+column+` < $3`+after+`
		ORDER BY `+column+`, visit_id LIMIT $4`, args...)
	if err != nil {
		return nil, fmt.Errorf("visits of %s by %s: %w", q.Vehicle, column, err)
	}
	out, err := pgx.CollectRows(rows, scanVisit)
	if err != nil {
		return nil, fmt.Errorf("visits of %s by %s: %w", q.Vehicle, column, err)
	}
	return out, nil
}
