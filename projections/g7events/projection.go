package g7events

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/projections/projector"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.g7events from the start into a table that
// already holds its rows (harmless: reports apply by rank).
const ProjectionName = "tms.projector.g7events"

// Spec is the read model's registration (projections.All): it reads
// tms.g7events into g7_events.
var Spec = projector.Spec{
	Name:   ProjectionName,
	Topics: []string{event.TopicG7Events},
	Tables: []string{"g7_events"},
}

// Report is one report as the projection applies it: its data and the
// envelope id it came with.
type Report struct {
	Version string
	Data    g7event.Reported
}

// Projection builds the g7_events table from tms.g7events.
type Projection struct {
	skips *projector.Skips
}

// NewProjection builds the projection; reg (optional) receives the count
// of records it could not read.
func NewProjection(reg prometheus.Registerer, log *slog.Logger) *Projection {
	return &Projection{skips: projector.NewSkips(ProjectionName, reg, log)}
}

// Decode implements projector.Projection: reports are kept; other types
// are not ours; anything unreadable, or that the table could not hold,
// is skipped and counted rather than left to fail its batch forever.
func (p *Projection) Decode(r *kgo.Record) (Report, bool) {
	e, err := event.Decode(r.Value)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return Report{}, false
	}
	if e.Type != event.TypeG7EventReported {
		return Report{}, false
	}
	d, err := g7event.FromEvent(e)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return Report{}, false
	}
	if _, err := uuid.Parse(d.G7EventID); err != nil {
		p.skips.Skip(r, "malformed_event", fmt.Errorf("%s %s: g7_event_id %q is not a UUID", e.Type, e.ID, d.G7EventID))
		return Report{}, false
	}
	if _, err := uuid.Parse(e.ID); err != nil {
		p.skips.Skip(r, "malformed_event", fmt.Errorf("%s: id %q is not a UUID", e.Type, e.ID))
		return Report{}, false
	}
	return Report{Version: e.ID, Data: d}, true
}

// upsertSQL inserts an event's row, or replaces it with a report of
// higher rank (g7event.Rank, in SQL: null times rank lowest). Applying
// a report again, or one of lower rank, writes nothing.
const upsertSQL = `
INSERT INTO g7_events (id, vehicle, kind, open, start_time, end_time, g7_seconds, lat, lng, end_lat, end_lng,
                       push_time, received_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (id) DO UPDATE SET
	open = EXCLUDED.open, end_time = EXCLUDED.end_time, g7_seconds = EXCLUDED.g7_seconds,
	lat = EXCLUDED.lat, lng = EXCLUDED.lng, end_lat = EXCLUDED.end_lat, end_lng = EXCLUDED.end_lng,
	push_time = EXCLUDED.push_time, received_at = EXCLUDED.received_at, version = EXCLUDED.version
WHERE (NOT EXCLUDED.open, coalesce(EXCLUDED.push_time, '-infinity'), coalesce(EXCLUDED.end_time, '-infinity'), EXCLUDED.version)
    > (NOT g7_events.open, coalesce(g7_events.push_time, '-infinity'), coalesce(g7_events.end_time, '-infinity'), g7_events.version)`

// Apply implements projector.Projection: the reports in record order,
// in one round trip. The order does not change the outcome.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, reports []Report) error {
	b := &pgx.Batch{}
	for _, r := range reports {
		d := &r.Data
		b.Queue(upsertSQL, d.G7EventID, d.Vehicle, string(d.Kind), d.Open, d.StartTime, d.EndTime, d.G7Seconds,
			d.Lat, d.Lng, d.EndLat, d.EndLng, d.PushTime, d.ReceivedAt, r.Version)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply %d g7 event reports: %w", len(reports), err)
	}
	return nil
}
