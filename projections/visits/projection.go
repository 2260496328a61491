package visits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/projections/projector"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.geofence from the start into a table that
// already holds its rows (harmless: entries and exits apply idempotently).
const ProjectionName = "tms.projector.visits"

// Spec is the read model's registration (projections.All): it reads
// tms.geofence into visits.
var Spec = projector.Spec{
	Name:   ProjectionName,
	Topics: []string{event.TopicGeofence},
	Tables: []string{"visits"},
}

// Change is an entry or an exit, as the projection applies it.
type Change struct {
	Kind  geofence.Kind
	Visit geofence.Visit
}

// Projection builds the visits table from tms.geofence.
type Projection struct {
	skips *projector.Skips
}

// NewProjection builds the projection; reg (optional) receives the count
// of records it could not read.
func NewProjection(reg prometheus.Registerer, log *slog.Logger) *Projection {
	return &Projection{skips: projector.NewSkips(ProjectionName, reg, log)}
}

// Decode implements projector.Projection. Entries and exits are kept;
// alerts and other types are not ours; anything unreadable, or that the
// table could not hold (a visit id that is not a UUID), is skipped and
// counted rather than left to fail its batch forever.
func (p *Projection) Decode(r *kgo.Record) (Change, bool) {
	e, err := event.Decode(r.Value)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return Change{}, false
	}
	var kind geofence.Kind
	switch e.Type {
	case event.TypeEnteredStation:
		kind = geofence.Entered
	case event.TypeExitedStation:
		kind = geofence.Exited
	default:
		return Change{}, false
	}
	var v geofence.Visit
	if err := json.Unmarshal(e.Data, &v); err != nil {
		p.skips.Skip(r, "malformed_event", fmt.Errorf("%s %s: %w", e.Type, e.ID, err))
		return Change{}, false
	}
	if err := check(kind, &v); err != nil {
		p.skips.Skip(r, "malformed_event", fmt.Errorf("%s %s: %w", e.Type, e.ID, err))
		return Change{}, false
	}
	return Change{Kind: kind, Visit: v}, true
}

// check reports a visit event the table cannot hold.
func check(kind geofence.Kind, v *geofence.Visit) error {
	if _, err := uuid.Parse(v.VisitID); err != nil {
		return fmt.Errorf("visit_id %q is not a UUID", v.VisitID)
	}
	switch {
	case v.Vehicle == "" || v.StationID == "" || v.StationType == "":
		return errors.New("vehicle, station_id and station_type are required")
	case v.FixTime.IsZero():
		return errors.New("fix_time is required")
	case kind == geofence.Exited && (v.EnteredAt == nil || v.DwellS == nil):
		return errors.New("an exit needs entered_at and dwell_s")
	}
	return nil
}

// enterSQL opens a visit, once.
const enterSQL = `
INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version, entered_at,
                    entry_flags, initial_cause, gap_s)
VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), $9)
ON CONFLICT (visit_id) DO NOTHING`

// exitSQL closes a visit, or inserts it closed when its entry was never
// seen. Applying it again writes the same values.
const exitSQL = `
INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version, entered_at,
                    exited_at, dwell_s, exit_flags, initial_cause, exit_gap_s)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nullif($10, ''), $11)
ON CONFLICT (visit_id) DO UPDATE SET
	exited_at = EXCLUDED.exited_at, dwell_s = EXCLUDED.dwell_s,
	exit_flags = EXCLUDED.exit_flags, exit_gap_s = EXCLUDED.exit_gap_s`

// Apply implements projector.Projection: the changes in record order (an
// entry before its exit), in one round trip.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, changes []Change) error {
	b := &pgx.Batch{}
	for _, c := range changes {
		v := &c.Visit
		flags := v.Flags
		if flags == nil {
			flags = []string{}
		}
		if c.Kind == geofence.Entered {
			b.Queue(enterSQL, v.VisitID, v.Vehicle, v.StationID, v.StationType, v.StationVersion, v.FixTime,
				flags, v.InitialCause, v.GapS)
			continue
		}
		b.Queue(exitSQL, v.VisitID, v.Vehicle, v.StationID, v.StationType, v.StationVersion, *v.EnteredAt,
			v.FixTime, *v.DwellS, flags, v.InitialCause, v.GapS)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply %d visit changes: %w", len(changes), err)
	}
	return nil
}
