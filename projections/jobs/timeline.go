package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventKind is a kind of job event on a vehicle's timeline. Its order is
// the order of events of equal time: a stop departed before one arrived
// (the vehicle leaves one station, then reaches the next), and the
// completion after the last departure.
type EventKind int

// The job events a job's row holds.
const (
	EventCreated EventKind = iota
	EventStarted
	EventStopDeparted
	EventStopArrived
	// EventCompleted is the completion of the job's latest revision:
	// tms.job.completed.v1 for revision 1, tms.job.amended.v1 after.
	EventCompleted
	EventCancelled
)

// TimelineEvent is one job event as the jobs read model remembers it,
// with what it takes to rebuild the event: the job's identity and the
// part of its row the event carried (Payload, per Kind: for created,
// {"cargo", "stops"}; for a stop event, the stop as it stands now; for
// completed, the completion; for cancelled, {"reason", "stops"}; for
// started, nothing).
type TimelineEvent struct {
	At          time.Time
	Kind        EventKind
	JobID       string
	Stop        int // the stop's index for a stop event; -1 otherwise
	Vehicle     string
	ExternalRef string
	CreatedAt   time.Time
	StartedAt   *time.Time
	Payload     json.RawMessage
}

// TimelineCursor is a position in the order of a vehicle's job events:
// the last one of the previous page.
type TimelineCursor struct {
	At    time.Time
	Kind  EventKind
	JobID string
	Stop  int
}

// TimelineQuery selects one vehicle's job events with their time in
// [From, To), in the order (time, kind, job id, stop): the job events of a
// vehicle's replayed history (projections/timeline), read a page at a
// time.
type TimelineQuery struct {
	Vehicle  string
	From, To time.Time
	// After is the keyset cursor: only events after it.
	After *TimelineCursor
	// Limit caps the result (required).
	Limit int
}

// timelineSQL lists a vehicle's job events from its jobs' rows: each job
// created before the end of the range and not finished before the point
// reached ($2: a completed job's last event is its completion, a cancelled
// one's its cancellation) is unfolded into its events, of which those in
// range after the cursor are sorted. The jobs are found by
// jobs_vehicle_created; a page costs the vehicle's jobs created before the
// end of the range (a few thousand for a vehicle with years of jobs), and
// holds at most Limit events in memory.
const timelineSQL = `
SELECT e.t, e.kind, j.id::text, e.stop, j.vehicle, coalesce(j.external_ref, ''), j.created_at, j.started_at, e.payload
FROM jobs j
CROSS JOIN LATERAL (
    SELECT j.created_at, 0, -1, jsonb_build_object('cargo', j.cargo, 'stops', j.stops)
    UNION ALL
    SELECT j.started_at, 1, -1, NULL::jsonb WHERE j.started_at IS NOT NULL
    UNION ALL
    SELECT (s->>'departed_at')::timestamptz, 2, (s->>'index')::int, s
    FROM jsonb_array_elements(j.stops) s WHERE s->>'departed_at' IS NOT NULL
    UNION ALL
    SELECT (s->>'arrived_at')::timestamptz, 3, (s->>'index')::int, s
    FROM jsonb_array_elements(j.stops) s WHERE s->>'arrived_at' IS NOT NULL
    UNION ALL
    SELECT j.completed_at, 4, -1, j.completion WHERE j.completed_at IS NOT NULL AND j.completion IS NOT NULL
    UNION ALL
    SELECT j.cancelled_at, 5, -1, jsonb_build_object('reason', coalesce(j.cancel_reason, ''), 'stops', j.stops)
    WHERE j.cancelled_at IS NOT NULL
) AS e (t, kind, stop, payload)
WHERE j.vehicle = $1 AND j.created_at < $3
  AND coalesce(j.completed_at, j.cancelled_at, 'infinity') >= $2
  AND e.t >= $2 AND e.t < $3 AND (e.t, e.kind, j.id, e.stop) > ($4, $5, $6::uuid, $7)
ORDER BY e.t, e.kind, j.id, e.stop
LIMIT $8`

// beforeAll is a cursor below every event of a range: its time is the
// range's start, and no kind, job id or stop is smaller.
var beforeAll = TimelineCursor{Kind: -1, JobID: "00000000-0000-0000-0000-000000000000", Stop: -2}

// Timeline returns the job events q selects.
func (s *Store) Timeline(ctx context.Context, q TimelineQuery) ([]TimelineEvent, error) {
	if q.Limit < 1 {
		return nil, errors.New("job events of a timeline: a limit is required")
	}
	after := beforeAll
	after.At = q.From
	if q.After != nil {
		after = *q.After
	}
	from := q.From
	if after.At.After(from) {
		from = after.At
	}
	rows, err := s.pool.Query(ctx, timelineSQL, q.Vehicle, from, q.To, after.At, int(after.Kind), after.JobID, after.Stop, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("job events of %s: %w", q.Vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TimelineEvent, error) {
		var e TimelineEvent
		var kind int
		var payload []byte
		err := r.Scan(&e.At, &kind, &e.JobID, &e.Stop, &e.Vehicle, &e.ExternalRef, &e.CreatedAt, &e.StartedAt, &payload)
		e.Kind, e.Payload = EventKind(kind), payload
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("job events of %s: %w", q.Vehicle, err)
	}
	return out, nil
}

// Window is the time window of j's track and replay, both ends included:
// from its start to its end (the last departure, once every stop has
// departed, or its cancellation), or to now while it is under way. ok is
// false for a job that never started.
func (j *Job) Window(now time.Time) (from, to time.Time, ok bool) {
	if j.StartedAt == nil {
		return time.Time{}, time.Time{}, false
	}
	from, to = *j.StartedAt, now
	var last time.Time
	departed := len(j.Stops) > 0
	for _, s := range j.Stops {
		if s.DepartedAt == nil {
			departed = false
		} else if s.DepartedAt.After(last) {
			last = *s.DepartedAt
		}
	}
	switch {
	case j.CompletedAt != nil:
		to = *j.CompletedAt
	case departed:
		to = last
	case j.CancelledAt != nil:
		to = *j.CancelledAt
	}
	if to.Before(from) {
		to = from
	}
	return from, to, true
}
