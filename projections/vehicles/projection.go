package vehicles

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.positions from the start.
const ProjectionName = "tms.projector.vehicles"

// Projection builds positions and vehicles from tms.positions.
type Projection struct {
	log     *slog.Logger
	skipped *prometheus.CounterVec
}

// NewProjection builds the projection; reg (optional) receives the count
// of records it could not read.
func NewProjection(reg prometheus.Registerer, log *slog.Logger) *Projection {
	if log == nil {
		log = slog.Default()
	}
	p := &Projection{
		log: log.With("projection", ProjectionName),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "tms_projector_records_skipped_total",
			Help:        "Records a projection could not read and skipped, by reason.",
			ConstLabels: prometheus.Labels{"projection": ProjectionName},
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(p.skipped)
	}
	return p
}

// Name implements projector.Projection.
func (*Projection) Name() string { return ProjectionName }

// Topics implements projector.Projection.
func (*Projection) Topics() []string { return []string{kafka.TopicPositions} }

// columns holds one batch as column arrays, the shape unnest() takes:
// one round trip per batch whatever its size.
type columns struct {
	plate      []string
	fixTime    []time.Time
	receivedAt []time.Time
	lat, lng   []float64
	speed      []float64
	course     []*float64
	flags      []string
	eventID    []string
}

// upsertSQL inserts the batch's fixes (a fix already stored, or repeated
// within the batch, is ignored) and folds the newly stored ones into
// vehicles: the latest fix by fix time wins, so a late, older fix never
// replaces a newer one; counts grow by the fixes actually stored.
const upsertSQL = `
WITH input AS (
	SELECT DISTINCT ON (plate, fix_time) *
	FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::float8[], $5::float8[],
	            $6::float8[], $7::float8[], $8::text[], $9::uuid[])
	     WITH ORDINALITY AS t(plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags, event_id, ord)
	ORDER BY plate, fix_time, ord
), stored AS (
	INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags, event_id)
	SELECT plate, fix_time, received_at, lat, lng, speed_kmh, course_deg,
	       coalesce(string_to_array(nullif(flags, ''), ','), '{}'), event_id
	FROM input
	ON CONFLICT DO NOTHING
	RETURNING plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags
), latest AS (
	SELECT DISTINCT ON (plate) * FROM stored ORDER BY plate, fix_time DESC
), totals AS (
	SELECT plate, count(*) AS n, min(received_at) AS first_seen, max(received_at) AS last_seen
	FROM stored GROUP BY plate
)
INSERT INTO vehicles AS v (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags,
                           first_seen, last_seen, positions_count)
SELECT l.plate, l.fix_time, l.received_at, l.lat, l.lng, l.speed_kmh, l.course_deg, l.flags,
       t.first_seen, t.last_seen, t.n
FROM latest l JOIN totals t USING (plate)
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

// Apply implements projector.Projection.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, records []*kgo.Record) error {
	c := columns{}
	for _, r := range records {
		e, err := event.Decode(r.Value)
		if err != nil {
			p.skip("malformed_envelope", r, err)
			continue
		}
		if e.Type != event.TypePositionReported {
			continue // other types on the topic are not ours to project
		}
		pos, err := position.FromEvent(e)
		if err != nil {
			p.skip("malformed_data", r, err)
			continue
		}
		c.add(&pos, e.ID)
	}
	if len(c.plate) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, upsertSQL, c.plate, c.fixTime, c.receivedAt, c.lat, c.lng, c.speed, c.course, c.flags, c.eventID)
	if err != nil {
		return fmt.Errorf("store %d positions: %w", len(c.plate), err)
	}
	return nil
}

func (c *columns) add(p *position.Position, id string) {
	c.plate = append(c.plate, p.Plate)
	c.fixTime = append(c.fixTime, p.FixTime)
	c.receivedAt = append(c.receivedAt, p.ReceivedAt)
	c.lat = append(c.lat, p.Lat)
	c.lng = append(c.lng, p.Lng)
	c.speed = append(c.speed, p.SpeedKmh)
	c.course = append(c.course, p.Course)
	c.flags = append(c.flags, strings.Join(p.Flags, ","))
	c.eventID = append(c.eventID, id)
}

func (p *Projection) skip(reason string, r *kgo.Record, err error) {
	p.skipped.WithLabelValues(reason).Inc()
	p.log.Warn("skipping a record the projection cannot read",
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", reason, "err", err)
}
