package httpapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/projections/visits"
)

// Bounds of GET /api/v1/visits.
const (
	defaultVisitsWindow = 24 * time.Hour
	defaultVisitsLimit  = 100
	maxVisitsLimit      = 1000
)

// visitJSON is a visit as the API shows it. Flags are the entry's and the
// exit's together; entry_flags and exit_flags say which is which (an
// interpolated exit time is an estimate, an interpolated entry another).
type visitJSON struct {
	VisitID        string     `json:"visit_id"`
	Vehicle        string     `json:"vehicle"`
	StationID      string     `json:"station_id"`
	StationType    string     `json:"station_type"`
	StationVersion int64      `json:"station_version"`
	EnteredAt      time.Time  `json:"entered_at"`
	ExitedAt       *time.Time `json:"exited_at"`
	DwellS         *float64   `json:"dwell_s"`
	Open           bool       `json:"open"`
	Flags          []string   `json:"flags"`
	EntryFlags     []string   `json:"entry_flags"`
	ExitFlags      []string   `json:"exit_flags"`
	InitialCause   *string    `json:"initial_cause"`
	GapS           *float64   `json:"gap_s"`
	ExitGapS       *float64   `json:"exit_gap_s"`
}

// visitListJSON is a page of visits; NextCursor is null on the last.
type visitListJSON struct {
	From       time.Time   `json:"from"`
	To         time.Time   `json:"to"`
	Visits     []visitJSON `json:"visits"`
	NextCursor *string     `json:"next_cursor"`
}

func toVisitJSON(v *visits.Visit) visitJSON {
	out := visitJSON{
		VisitID: v.VisitID, Vehicle: v.Vehicle, StationID: v.StationID, StationType: v.StationType,
		StationVersion: v.StationVersion, EnteredAt: v.EnteredAt.UTC(), DwellS: v.DwellS, Open: v.Open(),
		EntryFlags: nonNil(v.EntryFlags), ExitFlags: nonNil(v.ExitFlags), GapS: v.GapS, ExitGapS: v.ExitGapS,
	}
	if v.ExitedAt != nil {
		t := v.ExitedAt.UTC()
		out.ExitedAt = &t
	}
	out.Flags = slices.Clone(out.EntryFlags)
	for _, f := range out.ExitFlags {
		if !slices.Contains(out.Flags, f) {
			out.Flags = append(out.Flags, f)
		}
	}
	if v.InitialCause != "" {
		out.InitialCause = &v.InitialCause
	}
	return out
}

// parseVisits reads and checks a visits request, naming every bad field.
func parseVisits(c *gin.Context, now time.Time) (visits.Query, error) {
	p := newParams(c.Request)
	var q visits.Query
	if v, ok := p.single("station"); ok {
		q.StationID = p.stationID("station", v)
	}
	if v, ok := p.single("vehicle"); ok {
		q.Vehicle = p.plate("vehicle", v)
	}
	q.From, q.To, _ = p.window(now, defaultVisitsWindow)
	q.Open = p.boolean("open")
	q.Limit = p.limit(defaultVisitsLimit, maxVisitsLimit)
	q.After = p.visitCursor()
	return q, p.err()
}

// listVisits serves GET /api/v1/visits: the visits overlapping [from, to),
// newest entry first, so that a dashboard's first page is what just
// happened.
func (s *server) listVisits(c *gin.Context) {
	q, err := parseVisits(c, s.cfg.Now())
	if err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more than the page tells whether another page follows
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Visits.List(ctx, q)
	if err != nil {
		fail(c, err)
		return
	}
	out := visitListJSON{From: q.From.UTC(), To: q.To.UTC()}
	out.Visits, out.NextCursor = page(list, limit, visitCursor, toVisitJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}
