package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/projections/projector"
)

// ProjectionName is the projector's consumer group and offsets key.
// Renaming it re-reads tms.jobs from the start into tables that already
// hold their rows (harmless: every event applies idempotently), and
// strands the offsets the job commands wait on.
const ProjectionName = "tms.projector.jobs"

// Spec is the read model's registration (projections.All): it reads
// tms.jobs into jobs, job_stops and job_requests.
var Spec = projector.Spec{
	Name:   ProjectionName,
	Topics: []string{event.TopicJobs},
	Tables: []string{"jobs", "job_stops", "job_requests"},
}

// Change is one record of tms.jobs as the projection applies it: exactly
// one of its pointers is set.
type Change struct {
	// At is the event's time.
	At time.Time
	// Request is a create command.
	Request *job.Create
	// Created, Started, Arrived, Departed, Completion (completed or
	// amended) and Cancelled are the job processor's events.
	Created    *job.Created
	Started    *job.Started
	Arrived    *job.StopEvent
	Departed   *job.StopEvent
	Completion *job.Completion
	Cancelled  *job.Cancelled
}

// Projection builds the jobs, job_stops and job_requests tables from
// tms.jobs.
type Projection struct {
	skips *projector.Skips
}

// NewProjection builds the projection; reg (optional) receives the count
// of records it could not read.
func NewProjection(reg prometheus.Registerer, log *slog.Logger) *Projection {
	return &Projection{skips: projector.NewSkips(ProjectionName, reg, log)}
}

// Decode implements projector.Projection. The cancel command and types
// that are not the jobs' are skipped silently; anything unreadable, or
// that the tables could not hold (a job id that is not a UUID, a stop
// index out of range, an external reference that does not name its job),
// is skipped and counted rather than left to fail its batch forever.
func (p *Projection) Decode(r *kgo.Record) (Change, bool) {
	e, err := event.Decode(r.Value)
	if err != nil {
		p.skips.Skip(r, "malformed_event", err)
		return Change{}, false
	}
	c := Change{At: e.Time}
	var data any
	switch e.Type {
	case job.TypeCreateJob:
		c.Request = &job.Create{}
		data = c.Request
	case event.TypeJobCreated:
		c.Created = &job.Created{}
		data = c.Created
	case event.TypeJobStarted:
		c.Started = &job.Started{}
		data = c.Started
	case event.TypeJobStopArrived:
		c.Arrived = &job.StopEvent{}
		data = c.Arrived
	case event.TypeJobStopDeparted:
		c.Departed = &job.StopEvent{}
		data = c.Departed
	case event.TypeJobCompleted, event.TypeJobAmended:
		c.Completion = &job.Completion{}
		data = c.Completion
	case event.TypeJobCancelled:
		c.Cancelled = &job.Cancelled{}
		data = c.Cancelled
	default:
		return Change{}, false // the cancel command, or not ours
	}
	if err := json.Unmarshal(e.Data, data); err != nil {
		p.skips.Skip(r, "malformed_event", fmt.Errorf("%s %s: %w", e.Type, e.ID, err))
		return Change{}, false
	}
	if err := c.check(); err != nil {
		p.skips.Skip(r, "malformed_event", fmt.Errorf("%s %s: %w", e.Type, e.ID, err))
		return Change{}, false
	}
	return c, true
}

// check reports a change the tables cannot hold.
func (c *Change) check() error {
	var id, vehicle, ref string
	switch {
	case c.Request != nil:
		id, vehicle, ref = c.Request.JobID, c.Request.Vehicle, c.Request.ExternalRef
		if c.Request.RequestedAt.IsZero() {
			return errors.New("requested_at is required")
		}
	case c.Created != nil:
		id, vehicle, ref = c.Created.JobID, c.Created.Vehicle, c.Created.ExternalRef
		if err := checkStops(c.Created.Stops); err != nil {
			return err
		}
		if c.Created.Status != job.StatusQueued && c.Created.Status != job.StatusActive {
			return fmt.Errorf("a job is created queued or active, not %q", c.Created.Status)
		}
		if c.Created.CreatedAt.IsZero() {
			return errors.New("created_at is required")
		}
	case c.Started != nil:
		id, vehicle, ref = c.Started.JobID, c.Started.Vehicle, c.Started.ExternalRef
		if c.Started.StartedAt.IsZero() {
			return errors.New("started_at is required")
		}
	case c.Arrived != nil || c.Departed != nil:
		s := c.Arrived
		if s == nil {
			s = c.Departed
		}
		id, vehicle, ref = s.JobID, s.Vehicle, s.ExternalRef
		if s.Index < 0 || s.Index >= job.MaxStops {
			return fmt.Errorf("stop index %d is out of range", s.Index)
		}
		if (c.Arrived != nil && s.ArrivedAt == nil) || (c.Departed != nil && s.DepartedAt == nil) {
			return errors.New("the stop's arrival or departure time is required")
		}
	case c.Completion != nil:
		id, vehicle, ref = c.Completion.JobID, c.Completion.Vehicle, c.Completion.ExternalRef
		if c.Completion.Revision < 1 {
			return fmt.Errorf("revision %d: revisions start at 1", c.Completion.Revision)
		}
		if err := checkStops(c.Completion.Stops); err != nil {
			return err
		}
	case c.Cancelled != nil:
		id, vehicle, ref = c.Cancelled.JobID, c.Cancelled.Vehicle, c.Cancelled.ExternalRef
		if err := checkStops(c.Cancelled.Stops); err != nil {
			return err
		}
	}
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("job_id %q is not a UUID", id)
	}
	if vehicle == "" {
		return errors.New("vehicle is required")
	}
	// A job's id is derived from its reference; a record where they
	// disagree was not written by tms, and would take another job's place.
	if ref != "" && job.IDFor(ref) != id {
		return fmt.Errorf("job_id %s is not the id of external_ref %q", id, ref)
	}
	return nil
}

func checkStops(stops []job.StopProgress) error {
	if len(stops) == 0 || len(stops) > job.MaxStops {
		return fmt.Errorf("%d stops: a job has 1 to %d", len(stops), job.MaxStops)
	}
	for i, s := range stops {
		if s.Index != i || s.StationID == "" {
			return fmt.Errorf("stop %d: its index and station_id are required, in order", i)
		}
	}
	return nil
}

// The statements, one per kind of change. Each is a no-op when applied
// again after itself or after any later event of the job.
const (
	requestSQL = `
INSERT INTO job_requests (job_id, vehicle, external_ref, request, requested_at)
VALUES ($1, $2, nullif($3, ''), $4, $5)
ON CONFLICT DO NOTHING`

	// createdSQL inserts the job once. A unique violation of any kind
	// (the id, or an external reference already taken) keeps the first.
	createdSQL = `
INSERT INTO jobs (id, vehicle, external_ref, status, cargo, stops, created_at, updated_at)
VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $7)
ON CONFLICT DO NOTHING`

	jobStopSQL = `
INSERT INTO job_stops (job_id, stop_index, station_id, kind, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING`

	startedSQL = `
UPDATE jobs SET status = 'active', started_at = $2, updated_at = $3
WHERE id = $1 AND started_at IS NULL AND status IN ('queued', 'active')`

	// arrivedSQL and departedSQL replace one stop: an arrival only of a
	// pending stop, a departure only of one not departed yet, and only
	// while the job is under way.
	arrivedSQL = `
UPDATE jobs SET stops = jsonb_set(stops, ARRAY[$2::text], $3::jsonb), updated_at = $4
WHERE id = $1 AND status IN ('queued', 'active') AND stops -> $2::int ->> 'status' = 'pending'`

	departedSQL = `
UPDATE jobs SET stops = jsonb_set(stops, ARRAY[$2::text], $3::jsonb), updated_at = $4
WHERE id = $1 AND status IN ('queued', 'active') AND stops -> $2::int ->> 'status' IN ('pending', 'arrived')`

	// completionSQL applies a completion over a lower revision: the
	// highest revision wins, whatever order they come in.
	completionSQL = `
UPDATE jobs SET status = 'completed', started_at = $3, completed_at = $4, revision = $2, completion = $5,
	stops = $6, distance_empty_m = $7, distance_loaded_m = $8, distance_total_m = $9, updated_at = $10
WHERE id = $1 AND revision < $2 AND status <> 'cancelled'`

	cancelledSQL = `
UPDATE jobs SET status = 'cancelled', cancelled_at = $2, cancel_reason = $3, stops = $4, updated_at = $2
WHERE id = $1 AND status IN ('queued', 'active')`
)

// Apply implements projector.Projection: the changes in record order, in
// one round trip.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, changes []Change) error {
	b := &pgx.Batch{}
	for _, c := range changes {
		if err := queue(b, c); err != nil {
			return err
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply %d job changes: %w", len(changes), err)
	}
	return nil
}

func queue(b *pgx.Batch, c Change) error {
	switch {
	case c.Request != nil:
		r := c.Request
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("job %s: %w", r.JobID, err)
		}
		b.Queue(requestSQL, r.JobID, r.Vehicle, r.ExternalRef, string(data), r.RequestedAt)
	case c.Created != nil:
		cr := c.Created
		cargo, stops, err := marshal(cr.JobID, cr.Cargo, cr.Stops)
		if err != nil {
			return err
		}
		b.Queue(createdSQL, cr.JobID, cr.Vehicle, cr.ExternalRef, cr.Status, cargo, stops, cr.CreatedAt)
		for _, s := range cr.Stops {
			b.Queue(jobStopSQL, cr.JobID, s.Index, s.StationID, s.Kind, cr.CreatedAt)
		}
	case c.Started != nil:
		b.Queue(startedSQL, c.Started.JobID, c.Started.StartedAt, c.At)
	case c.Arrived != nil, c.Departed != nil:
		s, sql := c.Arrived, arrivedSQL
		if s == nil {
			s, sql = c.Departed, departedSQL
		}
		stop := s.StopProgress
		stop.Flags = nonNil(stop.Flags)
		data, err := json.Marshal(stop)
		if err != nil {
			return fmt.Errorf("job %s: %w", s.JobID, err)
		}
		b.Queue(sql, s.JobID, s.Index, string(data), c.At)
	case c.Completion != nil:
		cp := c.Completion
		data, err := json.Marshal(cp)
		if err != nil {
			return fmt.Errorf("job %s: %w", cp.JobID, err)
		}
		_, stops, err := marshal(cp.JobID, cp.Cargo, cp.Stops)
		if err != nil {
			return err
		}
		b.Queue(completionSQL, cp.JobID, cp.Revision, cp.StartedAt, cp.CompletedAt, string(data), stops,
			cp.DistanceM.Empty, cp.DistanceM.Loaded, cp.DistanceM.Total, c.At)
	case c.Cancelled != nil:
		cn := c.Cancelled
		_, stops, err := marshal(cn.JobID, job.Cargo{}, cn.Stops)
		if err != nil {
			return err
		}
		b.Queue(cancelledSQL, cn.JobID, cn.CancelledAt, cn.Reason, stops)
	}
	return nil
}

// marshal encodes a job's cargo and stops for their jsonb columns.
func marshal(id string, cargo job.Cargo, stops []job.StopProgress) (string, string, error) {
	stops = slices.Clone(stops)
	for i := range stops {
		stops[i].Flags = nonNil(stops[i].Flags)
	}
	c, err := json.Marshal(cargo)
	if err != nil {
		return "", "", fmt.Errorf("job %s: %w", id, err)
	}
	s, err := json.Marshal(stops)
	if err != nil {
		return "", "", fmt.Errorf("job %s: %w", id, err)
	}
	return string(c), string(s), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
