package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/track"
	"github.com/tmsfleet/tms/projections/jobs"
)

// Bounds of GET /api/v1/jobs.
const (
	defaultJobsLimit = 100
	maxJobsLimit     = 1000
)

// jobStatuses are the statuses a job can have, as the status filter
// takes them.
var jobStatuses = []string{job.StatusQueued, job.StatusActive, job.StatusCompleted, job.StatusCancelled}

// jobJSON is a job as the API shows it: what DESIGN.md's job resource
// holds, and once completed, what billing charges from (the completion of
// the latest revision): its duration, distances, legs and noise.
type jobJSON struct {
	ID           string        `json:"id"`
	Vehicle      string        `json:"vehicle"`
	ExternalRef  *string       `json:"external_ref"`
	Status       string        `json:"status"`
	Cargo        cargoJSON     `json:"cargo"`
	Stops        []jobStopJSON `json:"stops"`
	CreatedAt    time.Time     `json:"created_at"`
	StartedAt    *time.Time    `json:"started_at"`
	CompletedAt  *time.Time    `json:"completed_at"`
	CancelledAt  *time.Time    `json:"cancelled_at"`
	CancelReason *string       `json:"cancel_reason"`
	// Revision is the completion's: 0 before it, then 1, 2 ... with each
	// amendment.
	Revision  int            `json:"revision"`
	DurationS *float64       `json:"duration_s"`
	DistanceM *job.Distances `json:"distance_m"`
	Legs      *[]job.Leg     `json:"legs"`
	Noise     *track.Noise   `json:"noise"`
	UpdatedAt time.Time      `json:"updated_at"`
}

type cargoJSON struct {
	WeightKg    float64 `json:"weight_kg"`
	Description *string `json:"description"`
}

// jobStopJSON is a stop with its progress.
type jobStopJSON struct {
	Index          int        `json:"index"`
	StationID      string     `json:"station_id"`
	StationName    string     `json:"station_name"`
	Kind           string     `json:"kind"`
	PlannedArrival *time.Time `json:"planned_arrival"`
	// Point is the station's reference point when the job was created.
	Point      job.Point  `json:"point"`
	Status     string     `json:"status"`
	ArrivedAt  *time.Time `json:"arrived_at"`
	DepartedAt *time.Time `json:"departed_at"`
	DwellS     *float64   `json:"dwell_s"`
	VisitID    *string    `json:"visit_id"`
	Flags      []string   `json:"flags"`
}

// jobListJSON is a page of jobs; NextCursor is null on the last.
type jobListJSON struct {
	Jobs       []jobJSON `json:"jobs"`
	NextCursor *string   `json:"next_cursor"`
}

func toJobJSON(j *jobs.Job) jobJSON {
	out := jobJSON{
		ID: j.ID, Vehicle: j.Vehicle, ExternalRef: nonEmpty(j.ExternalRef), Status: j.Status,
		Cargo:     cargoJSON{WeightKg: j.Cargo.WeightKg, Description: nonEmpty(j.Cargo.Description)},
		Stops:     make([]jobStopJSON, len(j.Stops)),
		CreatedAt: j.CreatedAt.UTC(), StartedAt: utc(j.StartedAt), CompletedAt: utc(j.CompletedAt),
		CancelledAt: utc(j.CancelledAt), CancelReason: nonEmpty(j.CancelReason), Revision: j.Revision,
		UpdatedAt: j.UpdatedAt.UTC(),
	}
	for i, s := range j.Stops {
		out.Stops[i] = jobStopJSON{
			Index: s.Index, StationID: s.StationID, StationName: s.StationName, Kind: s.Kind,
			PlannedArrival: utc(s.PlannedArrival), Point: s.Point, Status: s.Status,
			ArrivedAt: utc(s.ArrivedAt), DepartedAt: utc(s.DepartedAt), DwellS: s.DwellS,
			VisitID: nonEmpty(s.VisitID), Flags: nonNil(s.Flags),
		}
	}
	if c := j.Completion; c != nil && j.Status == job.StatusCompleted {
		legs := c.Legs
		if legs == nil {
			legs = []job.Leg{}
		}
		out.DurationS, out.DistanceM, out.Legs, out.Noise = &c.DurationS, &c.DistanceM, &legs, &c.Noise
	}
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// jobLocation is a job's URL path.
func jobLocation(id string) string { return apiPrefix + "/jobs/" + id }

// jobID reads a job id from the path: a UUID, returned in the canonical
// form the store keeps.
func (p *params) jobID(raw string) string {
	u, err := uuid.Parse(raw)
	if err != nil {
		p.fail("id", "%q is not a job id (a UUID such as 3f0c9a52-6f1e-4c7a-9d43-1b2e5c8f7a10)", clip(raw))
		return ""
	}
	return u.String()
}

// clip quotes at most 64 bytes of a client's value back to it.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return strings.ToValidUTF8(s[:64], "") + "…"
}

// jobStatuses returns the repeatable status filter.
func (p *params) jobStatuses() []string {
	var out []string
	for _, v := range p.values["status"] {
		if !slices.Contains(jobStatuses, v) {
			p.fail("status", "%q is not a job status; want one of %s", clip(v), strings.Join(jobStatuses, ", "))
			continue
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// timeRange reads an optional [from, to) pair of time parameters; from
// must be before to when both are given.
func (p *params) timeRange(fromName, toName string) (from, to *time.Time) {
	read := func(name string) *time.Time {
		if _, ok := p.values[name]; !ok {
			return nil
		}
		t, ok := p.time(name, time.Time{})
		if !ok {
			return nil
		}
		return &t
	}
	from, to = read(fromName), read(toName)
	if from != nil && to != nil && !from.Before(*to) {
		p.fail(fromName, "%s is not before %s, %s", from.Format(time.RFC3339Nano), toName, to.Format(time.RFC3339Nano))
	}
	return from, to
}

// jobCursor reads a jobs list cursor: the creation time and id of the
// last job of the page, in the form of a visits cursor.
func (p *params) jobCursor() *jobs.Cursor {
	t, id, ok := p.entryCursor()
	if !ok {
		return nil
	}
	return &jobs.Cursor{CreatedAt: t, ID: id}
}

func jobCursor(j *jobs.Job) *string { return entryCursor(j.CreatedAt, j.ID) }

// parseJobs reads and checks a jobs list request, naming every bad field.
func parseJobs(c *gin.Context) (jobs.Query, error) {
	p := newParams(c.Request)
	var q jobs.Query
	if v, ok := p.single("vehicle"); ok {
		q.Vehicle = p.plate("vehicle", v)
	}
	if v, ok := p.single("station"); ok {
		q.StationID = p.stationID("station", v)
	}
	q.Statuses = p.jobStatuses()
	q.CreatedFrom, q.CreatedTo = p.timeRange("created_from", "created_to")
	q.CompletedFrom, q.CompletedTo = p.timeRange("completed_from", "completed_to")
	q.Limit = p.limit(defaultJobsLimit, maxJobsLimit)
	q.After = p.jobCursor()
	return q, p.err()
}

// listJobs serves GET /api/v1/jobs: newest creation first, so that a
// dispatcher's first page is what was planned last.
func (s *server) listJobs(c *gin.Context) {
	q, err := parseJobs(c)
	if err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more than the page tells whether another page follows
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Jobs.List(ctx, q)
	if err != nil {
		fail(c, err)
		return
	}
	var out jobListJSON
	out.Jobs, out.NextCursor = page(list, limit, jobCursor, toJobJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// getJob serves GET /api/v1/jobs/{id}: the job with its stops and their
// progress, and once completed, its completion's facts.
func (s *server) getJob(c *gin.Context) {
	p := newParams(c.Request)
	id := p.jobID(c.Param("id"))
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	j, err := s.readJob(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, toJobJSON(&j))
}

// readJob reads job id; an error wrapping job.ErrNotFound names it.
func (s *server) readJob(c *gin.Context, id string) (jobs.Job, error) {
	ctx, cancel := s.queryContext(c)
	defer cancel()
	return s.cfg.Jobs.Get(ctx, id)
}
