package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/trips"
)

// Bounds of GET /api/v1/vehicles/{plate}/g7-events and of the stop
// comparison: a window has at most maxCompareStops stops on each side
// (a vehicle stops a few dozen times a day; a month of them fits).
const (
	defaultG7EventsLimit = 100
	maxG7EventsLimit     = 1000
	maxCompareStops      = 5000
)

// g7EventJSON is a G7 event as the API shows it.
type g7EventJSON struct {
	ID      string       `json:"id"`
	Vehicle string       `json:"vehicle"`
	Kind    g7event.Kind `json:"kind"`
	Open    bool         `json:"open"`
	// Start and End are G7's; End is null while the event lasts.
	StartTime time.Time  `json:"start_time"`
	EndTime   *time.Time `json:"end_time"`
	// DurationS is End - Start; null while open. G7Seconds is G7's own
	// figure, as sent.
	DurationS  *float64   `json:"duration_s"`
	G7Seconds  *float64   `json:"g7_seconds"`
	Lat        float64    `json:"lat"`
	Lng        float64    `json:"lng"`
	EndLat     *float64   `json:"end_lat"`
	EndLng     *float64   `json:"end_lng"`
	PushTime   *time.Time `json:"push_time"`
	ReceivedAt time.Time  `json:"received_at"`
}

// g7EventListJSON is a page of a vehicle's G7 events.
type g7EventListJSON struct {
	Vehicle string `json:"vehicle"`
	// Kind is the kind asked for; null for all.
	Kind       *g7event.Kind `json:"kind"`
	From       time.Time     `json:"from"`
	To         time.Time     `json:"to"`
	Events     []g7EventJSON `json:"events"`
	NextCursor *string       `json:"next_cursor"`
}

func toG7EventJSON(e *g7events.Event) g7EventJSON {
	out := g7EventJSON{
		ID: e.ID, Vehicle: e.Vehicle, Kind: e.Kind, Open: e.Open, StartTime: e.Start.UTC(), G7Seconds: e.G7Seconds,
		Lat: e.Lat, Lng: e.Lng, EndLat: e.EndLat, EndLng: e.EndLng, ReceivedAt: e.ReceivedAt.UTC(),
	}
	if e.End != nil {
		end := e.End.UTC()
		d := seconds(end.Sub(e.Start))
		out.EndTime, out.DurationS = &end, &d
	}
	if e.PushTime != nil {
		p := e.PushTime.UTC()
		out.PushTime = &p
	}
	return out
}

// kind reads the kind parameter: one of G7's kinds, or none.
func (p *params) kind() *g7event.Kind {
	v, ok := p.single("kind")
	if !ok {
		return nil
	}
	k, ok := g7event.ParseKind(v)
	if !ok {
		p.fail("kind", "%q is not one of stop, idle, ems", clip(v))
		return nil
	}
	return &k
}

// listG7Events serves GET /api/v1/vehicles/{plate}/g7-events: the
// vehicle's G7 events (one per event, in its latest standing report)
// that overlap [from, to), of one kind or all, in start order.
func (s *server) listG7Events(c *gin.Context) {
	p := newParams(c.Request)
	q := g7events.Query{Vehicle: p.plate("plate", c.Param("plate"))}
	kind := p.kind()
	if kind != nil {
		q.Kinds = []g7event.Kind{*kind}
	}
	q.From, q.To, _ = p.window(s.cfg.Now(), defaultTripsWindow)
	q.Limit = p.limit(defaultG7EventsLimit, maxG7EventsLimit)
	if t, id, ok := p.entryCursor(); ok {
		q.After = &g7events.Cursor{Start: t, ID: id}
	}
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.G7Events.List(ctx, q)
	if err == nil && len(list) == 0 {
		err = s.knownVehicle(c, q.Vehicle)
	}
	if err != nil {
		fail(c, err)
		return
	}
	out := g7EventListJSON{Vehicle: q.Vehicle, Kind: kind, From: q.From.UTC(), To: q.To.UTC()}
	out.Events, out.NextCursor = page(list, limit, func(e *g7events.Event) *string { return entryCursor(e.Start, e.ID) }, toG7EventJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// matchRulesJSON are the rules a comparison used.
type matchRulesJSON struct {
	MaxDistanceM float64 `json:"max_distance_m"`
	SlackS       float64 `json:"slack_s"`
}

// stopPairJSON is a stop both saw.
type stopPairJSON struct {
	G7  g7EventJSON `json:"g7"`
	TMS stopJSON    `json:"tms"`
	// StartDiffS is G7's start minus tms's, in seconds; EndDiffS the
	// same of the ends, null when either is still open.
	StartDiffS float64  `json:"start_diff_s"`
	EndDiffS   *float64 `json:"end_diff_s"`
	DistanceM  float64  `json:"distance_m"`
	OverlapS   float64  `json:"overlap_s"`
}

// comparisonSummaryJSON counts what a comparison found.
type comparisonSummaryJSON struct {
	G7Stops  int `json:"g7_stops"`
	TMSStops int `json:"tms_stops"`
	Matched  int `json:"matched"`
	OnlyG7   int `json:"only_g7"`
	OnlyTMS  int `json:"only_tms"`
}

// stopComparisonJSON is GET .../g7-stops/comparison's answer.
type stopComparisonJSON struct {
	Vehicle string                `json:"vehicle"`
	From    time.Time             `json:"from"`
	To      time.Time             `json:"to"`
	Rules   matchRulesJSON        `json:"rules"`
	Summary comparisonSummaryJSON `json:"summary"`
	Matched []stopPairJSON        `json:"matched"`
	OnlyG7  []g7EventJSON         `json:"only_g7"`
	OnlyTMS []stopJSON            `json:"only_tms"`
}

// number reads a decimal parameter within [lo, hi], def when absent.
func (p *params) number(name string, def, lo, hi float64) float64 {
	v, ok := p.single(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		p.fail(name, "%q is not a number in [%v, %v]", clip(v), lo, hi)
		return def
	}
	return f
}

// compareG7Stops serves GET /api/v1/vehicles/{plate}/g7-stops/comparison:
// G7's stops (kind stop) beside the stops tms derived from the positions
// (projections/trips), over [from, to): the pairs both saw, with their
// differences, and the stops each saw alone. docs/g7.md states the rule.
func (s *server) compareG7Stops(c *gin.Context) {
	p := newParams(c.Request)
	plate := p.plate("plate", c.Param("plate"))
	now := s.cfg.Now()
	from, to, _ := p.window(now, defaultTripsWindow)
	rules := g7event.MatchRules{
		MaxDistanceM: p.number("max_distance_m", g7event.DefaultMatchDistanceM, 0, g7event.MaxMatchDistanceM),
		Slack: time.Duration(p.number("slack_s", g7event.DefaultMatchSlack.Seconds(), 0, g7event.MaxMatchSlack.Seconds()) *
			float64(time.Second)),
	}
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	g7Stops, err := s.cfg.G7Events.List(ctx, g7events.Query{Vehicle: plate, From: from, To: to,
		Kinds: []g7event.Kind{g7event.KindStop}, Limit: maxCompareStops + 1})
	if err != nil {
		fail(c, err)
		return
	}
	tmsStops, err := s.cfg.Trips.Stops(ctx, trips.Query{Vehicle: plate, From: from, To: to, Limit: maxCompareStops + 1})
	if err != nil {
		fail(c, err)
		return
	}
	if len(g7Stops) > maxCompareStops || len(tmsStops) > maxCompareStops {
		p.fail("from", "the window holds more than %d stops on one side; narrow it", maxCompareStops)
		fail(c, p.err())
		return
	}
	if len(g7Stops) == 0 && len(tmsStops) == 0 {
		if err := s.knownVehicle(c, plate); err != nil {
			fail(c, err)
			return
		}
	}
	// An open G7 stop lasts, as far as anyone knows, to the window's end
	// (or now, when that is earlier).
	horizon := to
	if now.Before(horizon) {
		horizon = now
	}
	gs := make([]g7event.Stop, len(g7Stops))
	for i, e := range g7Stops {
		end := horizon
		if e.End != nil {
			end = *e.End
		}
		if end.Before(e.Start) {
			end = e.Start
		}
		gs[i] = g7event.Stop{Start: e.Start, End: end, Open: e.Open, At: geo.Point{Lat: e.Lat, Lng: e.Lng}}
	}
	ts := make([]g7event.Stop, len(tmsStops))
	for i, st := range tmsStops {
		ts[i] = g7event.Stop{Start: st.Start, End: st.End, Open: st.Open, At: geo.Point{Lat: st.Lat, Lng: st.Lng}}
	}
	cmp := g7event.Compare(gs, ts, rules)
	out := stopComparisonJSON{
		Vehicle: plate, From: from.UTC(), To: to.UTC(),
		Rules: matchRulesJSON{MaxDistanceM: rules.MaxDistanceM, SlackS: seconds(rules.Slack)},
		Summary: comparisonSummaryJSON{G7Stops: len(gs), TMSStops: len(ts), Matched: len(cmp.Pairs),
			OnlyG7: len(cmp.OnlyG7), OnlyTMS: len(cmp.OnlyTMS)},
		Matched: make([]stopPairJSON, 0, len(cmp.Pairs)),
		OnlyG7:  make([]g7EventJSON, 0, len(cmp.OnlyG7)),
		OnlyTMS: make([]stopJSON, 0, len(cmp.OnlyTMS)),
	}
	for _, pr := range cmp.Pairs {
		pj := stopPairJSON{G7: toG7EventJSON(&g7Stops[pr.G7]), TMS: toStopJSON(&tmsStops[pr.TMS]),
			StartDiffS: seconds(pr.StartDiff), DistanceM: math.Round(pr.DistanceM*10) / 10, OverlapS: seconds(pr.Overlap)}
		if pr.EndDiff != nil {
			d := seconds(*pr.EndDiff)
			pj.EndDiffS = &d
		}
		out.Matched = append(out.Matched, pj)
	}
	for _, i := range cmp.OnlyG7 {
		out.OnlyG7 = append(out.OnlyG7, toG7EventJSON(&g7Stops[i]))
	}
	for _, i := range cmp.OnlyTMS {
		out.OnlyTMS = append(out.OnlyTMS, toStopJSON(&tmsStops[i]))
	}
	writeJSON(c, http.StatusOK, contentJSON, out)
}
