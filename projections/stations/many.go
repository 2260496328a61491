package stations

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// GetMany returns the live stations among ids, in id order, in one query:
// what a job's stops name (pipeline/jobcmd). Ids of no live station are
// left out.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]Station, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+stationColumns+` FROM stations
		WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("get %d stations: %w", len(ids), err)
	}
	out, err := pgx.CollectRows(rows, scanStation)
	if err != nil {
		return nil, fmt.Errorf("get %d stations: %w", len(ids), err)
	}
	return out, nil
}
