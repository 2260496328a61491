package stations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/projector"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.stations from the start (harmless: the
// projection is idempotent), and strands the offsets the station commands
// wait on (see Caught).
const ProjectionName = "tms.projector.stations"

// Spec is the read model's registration (projections.All): it reads
// tms.stations into stations.
var Spec = projector.Spec{
	Name:   ProjectionName,
	Topics: []string{event.TopicStations},
	Tables: []string{"stations"},
}

// Projection builds the stations table from tms.stations.
type Projection struct {
	skips *projector.Skips
}

// NewProjection builds the projection; reg (optional) receives the count
// of records it could not read.
func NewProjection(reg prometheus.Registerer, log *slog.Logger) *Projection {
	return &Projection{skips: projector.NewSkips(ProjectionName, reg, log)}
}

// Decode implements projector.Projection. A record that is not a station
// event tms can read is skipped and counted: the catalogue must not stop
// for one bad record. A null value (a tombstone, which tms does not write)
// is skipped the same way.
func (p *Projection) Decode(r *kgo.Record) (station.Change, bool) {
	if r.Value == nil {
		p.skips.Skip(r, "tombstone", errors.New("a record without a value"))
		return station.Change{}, false
	}
	e, err := event.Decode(r.Value)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return station.Change{}, false
	}
	c, err := station.FromEvent(e)
	switch {
	case errors.Is(err, station.ErrNotStationEvent):
		return station.Change{}, false // not ours
	case err != nil:
		p.skips.Skip(r, "malformed_event", err)
		return station.Change{}, false
	}
	return c, true
}

// upsertSQL stores an upsert unless the row holds a newer version.
const upsertSQL = `
INSERT INTO stations AS s (id, name, type, coord_system, geometry, original_geometry, radius_m, detection,
                           version, updated_at, deleted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)
ON CONFLICT (id) DO UPDATE SET
	name = EXCLUDED.name, type = EXCLUDED.type, coord_system = EXCLUDED.coord_system,
	geometry = EXCLUDED.geometry, original_geometry = EXCLUDED.original_geometry,
	radius_m = EXCLUDED.radius_m, detection = EXCLUDED.detection,
	version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, deleted_at = NULL
WHERE s.version <= EXCLUDED.version`

// deleteSQL marks a station deleted unless the row holds a newer version;
// the definition stays for the record. A deletion of a station never seen
// (its upserts compacted away) still leaves its version.
const deleteSQL = `
INSERT INTO stations AS s (id, version, updated_at, deleted_at)
VALUES ($1, $2, $3, $3)
ON CONFLICT (id) DO UPDATE SET
	version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at
WHERE s.version <= EXCLUDED.version`

// Apply implements projector.Projection: the changes in order, in one
// round trip.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, changes []station.Change) error {
	b := &pgx.Batch{}
	for _, c := range changes {
		if c.Kind == station.Delete {
			b.Queue(deleteSQL, c.ID, c.Version, c.At)
			continue
		}
		d := c.Station.Data(c.Version)
		geometry, err := json.Marshal(d.Geometry)
		if err != nil {
			return fmt.Errorf("station %s: %w", c.ID, err)
		}
		var original []byte
		if d.OriginalGeometry != nil {
			if original, err = json.Marshal(d.OriginalGeometry); err != nil {
				return fmt.Errorf("station %s: %w", c.ID, err)
			}
		}
		detection, err := json.Marshal(d.Detection)
		if err != nil {
			return fmt.Errorf("station %s: %w", c.ID, err)
		}
		b.Queue(upsertSQL, d.ID, d.Name, d.Type, d.CoordSystem, string(geometry), nullString(original),
			d.RadiusM, string(detection), d.Version, c.At)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply %d station changes: %w", len(changes), err)
	}
	return nil
}

// nullString is b as text for a jsonb parameter, or NULL when b is nil.
func nullString(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}
