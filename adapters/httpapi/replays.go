package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/tmsfleet/tms/projections/replays"
)

// Bounds of the replays endpoints.
const (
	defaultReplaysLimit      = 100
	maxReplaysLimit          = 1000
	defaultReplayVisitsLimit = 100
	maxReplayVisitsLimit     = 1000
)

// Every replay resource says what it is, so that nobody takes a replay's
// visits for the live ones: kind tells them apart by machine, note by eye.
const (
	replayKind = "replay"
	replayNote = "Derived history: the visits `tms replay geofence` found by applying the station, as it stands " +
		"now, to past positions. Not live events: never in tms.geofence or /api/v1/visits, and not billed."
)

// replayJSON is a replay run as the API shows it. Detail is the error of
// a failed run, null otherwise.
type replayJSON struct {
	Kind           string     `json:"kind"`
	Note           string     `json:"note"`
	ID             string     `json:"id"`
	StationID      string     `json:"station_id"`
	StationVersion int64      `json:"station_version"`
	From           time.Time  `json:"from"`
	To             time.Time  `json:"to"`
	StartedAt      time.Time  `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at"`
	Status         string     `json:"status"`
	Detail         *string    `json:"detail"`
	FixesRead      int64      `json:"fixes_read"`
	Visits         int64      `json:"visits"`
}

// replayListJSON is the newest replay runs.
type replayListJSON struct {
	Replays []replayJSON `json:"replays"`
}

// replayVisitJSON is a visit a replay found. Open means the vehicle was
// still inside at the end of the replayed range, not that it is now.
type replayVisitJSON struct {
	VisitID      string     `json:"visit_id"`
	Vehicle      string     `json:"vehicle"`
	EnteredAt    time.Time  `json:"entered_at"`
	ExitedAt     *time.Time `json:"exited_at"`
	DwellS       *float64   `json:"dwell_s"`
	Open         bool       `json:"open"`
	EntryFlags   []string   `json:"entry_flags"`
	ExitFlags    []string   `json:"exit_flags"`
	InitialCause *string    `json:"initial_cause"`
}

// replayVisitListJSON is a page of a replay's visits, marked like the run
// they belong to; NextCursor is null on the last page.
type replayVisitListJSON struct {
	Kind       string            `json:"kind"`
	Note       string            `json:"note"`
	ReplayID   string            `json:"replay_id"`
	StationID  string            `json:"station_id"`
	Visits     []replayVisitJSON `json:"visits"`
	NextCursor *string           `json:"next_cursor"`
}

func toReplayJSON(r *replays.Run) replayJSON {
	out := replayJSON{
		Kind: replayKind, Note: replayNote, ID: r.ID, StationID: r.StationID, StationVersion: r.StationVersion,
		From: r.From.UTC(), To: r.To.UTC(), StartedAt: r.StartedAt.UTC(), Status: r.Status,
		FixesRead: r.FixesRead, Visits: r.Visits,
	}
	if r.FinishedAt != nil {
		t := r.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	if r.Detail != "" {
		out.Detail = &r.Detail
	}
	return out
}

func toReplayVisitJSON(v *replays.Visit) replayVisitJSON {
	out := replayVisitJSON{
		VisitID: v.VisitID, Vehicle: v.Vehicle, EnteredAt: v.EnteredAt.UTC(), DwellS: v.DwellS, Open: v.ExitedAt == nil,
		EntryFlags: nonNil(v.EntryFlags), ExitFlags: nonNil(v.ExitFlags),
	}
	if v.ExitedAt != nil {
		t := v.ExitedAt.UTC()
		out.ExitedAt = &t
	}
	if v.InitialCause != "" {
		out.InitialCause = &v.InitialCause
	}
	return out
}

// replayID reads a replay id from the path: a UUID, returned in the
// canonical form the store keeps.
func (p *params) replayID(raw string) string {
	u, err := uuid.Parse(raw)
	if err != nil {
		p.fail("id", "%q is not a replay id (a UUID such as 3f0c9a52-6f1e-4c7a-9d43-1b2e5c8f7a10)", raw)
		return ""
	}
	return u.String()
}

// getRun reads the run a request's path names, naming it when unknown.
func (s *server) getRun(c *gin.Context, id string) (replays.Run, error) {
	ctx, cancel := s.queryContext(c)
	defer cancel()
	r, err := s.cfg.Replays.Get(ctx, id)
	if errors.Is(err, replays.ErrNotFound) {
		return r, fmt.Errorf("%w: %s", err, id)
	}
	return r, err
}

// listReplays serves GET /api/v1/replays: the newest runs first, of one
// station when station is given.
func (s *server) listReplays(c *gin.Context) {
	p := newParams(c.Request)
	var stationID string
	if v, ok := p.single("station"); ok {
		stationID = p.stationID("station", v)
	}
	limit := p.limit(defaultReplaysLimit, maxReplaysLimit)
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Replays.List(ctx, stationID, limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := replayListJSON{Replays: make([]replayJSON, 0, len(list))}
	for i := range list {
		out.Replays = append(out.Replays, toReplayJSON(&list[i]))
	}
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// getReplay serves GET /api/v1/replays/{id}: one run.
func (s *server) getReplay(c *gin.Context) {
	p := newParams(c.Request)
	id := p.replayID(c.Param("id"))
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	r, err := s.getRun(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, toReplayJSON(&r))
}

// listReplayVisits serves GET /api/v1/replays/{id}/visits: the run's
// visits in entry order, keyset paginated by (entered_at, visit_id). An
// unknown run is 404, not an empty page.
func (s *server) listReplayVisits(c *gin.Context) {
	p := newParams(c.Request)
	id := p.replayID(c.Param("id"))
	limit := p.limit(defaultReplayVisitsLimit, maxReplayVisitsLimit)
	var after *time.Time
	afterTime, afterID, ok := p.entryCursor()
	if ok {
		after = &afterTime
	}
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	r, err := s.getRun(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	// One more than the page tells whether another page follows.
	list, err := s.cfg.Replays.Visits(ctx, id, after, afterID, limit+1)
	if err != nil {
		fail(c, err)
		return
	}
	out := replayVisitListJSON{Kind: replayKind, Note: replayNote, ReplayID: r.ID, StationID: r.StationID}
	out.Visits, out.NextCursor = page(list, limit,
		func(v *replays.Visit) *string { return entryCursor(v.EnteredAt, v.VisitID) }, toReplayVisitJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}
