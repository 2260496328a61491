package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/projections/vehicles"
)

// Bounds of GET /api/v1/vehicles/{plate}/track. A window may be of any
// length: a page reads at most limit fixes, and a simplified track
// (max_points) streams its window (History).
const (
	defaultTrackWindow = 24 * time.Hour
	defaultTrackLimit  = 1000
	maxTrackLimit      = 10000
)

// trackPointJSON is one fix of a track.
type trackPointJSON struct {
	FixTime    time.Time `json:"fix_time"`
	ReceivedAt time.Time `json:"received_at"`
	Lat        float64   `json:"lat"`
	Lng        float64   `json:"lng"`
	SpeedKmh   float64   `json:"speed_kmh"`
	CourseDeg  *float64  `json:"course_deg"`
	Flags      []string  `json:"flags"`
}

// trackJSON is a page of a track; NextCursor is null on the last. A
// simplified track (max_points) is one page, with Simplification.
// HistoryFrom is set when retention has dropped the start of the window.
type trackJSON struct {
	Plate          string              `json:"plate"`
	From           time.Time           `json:"from"`
	To             time.Time           `json:"to"`
	Points         []trackPointJSON    `json:"points"`
	NextCursor     *string             `json:"next_cursor"`
	Simplification *simplificationJSON `json:"simplification,omitempty"`
	HistoryFrom    *time.Time          `json:"history_from,omitempty"`
}

// trackRequest is a validated track request.
type trackRequest struct {
	query     vehicles.TrackQuery
	format    string
	maxPoints int
}

// parseTrack reads and checks a track request, naming every bad field.
func parseTrack(c *gin.Context, now time.Time, maxPoints int) (trackRequest, error) {
	p := newParams(c.Request)
	plate := p.plate("plate", c.Param("plate"))
	from, to, _ := p.window(now, defaultTrackWindow)
	r := trackRequest{
		query: vehicles.TrackQuery{
			Plate: plate, From: from, To: to,
			Limit: p.limit(defaultTrackLimit, maxTrackLimit),
			After: p.timeCursor(),
		},
		format:    p.oneOf("format", "json", "json", "geojson"),
		maxPoints: p.maxPoints(maxPoints),
	}
	return r, p.err()
}

// track serves GET /api/v1/vehicles/{plate}/track: a page of the
// vehicle's fixes, or with max_points the whole window simplified.
func (s *server) track(c *gin.Context) {
	r, err := parseTrack(c, s.cfg.Now(), s.cfg.History.MaxPoints)
	if err != nil {
		fail(c, err)
		return
	}
	q := r.query
	keptFrom, err := s.historyWindow(c, q.From, q.To)
	if err != nil {
		fail(c, err)
		return
	}
	var fixes []vehicles.Fix
	var next *string
	var simplified *simplificationJSON
	if r.maxPoints > 0 {
		st, err := s.simplify(c, q.Plate, q.From, q.To, r.maxPoints)
		if err != nil {
			fail(c, err)
			return
		}
		fixes, simplified = st.fixes, &st.info
	} else {
		limit := q.Limit
		q.Limit++ // one more than the page tells whether another page follows
		ctx, cancel := s.queryContext(c)
		defer cancel()
		if fixes, err = s.cfg.Vehicles.Track(ctx, q); err != nil {
			fail(c, err)
			return
		}
		if len(fixes) > limit {
			fixes = fixes[:limit]
			next = timeCursor(fixes[limit-1].FixTime)
		}
	}
	if len(fixes) == 0 {
		// An empty window of a known vehicle is an answer; an unknown
		// vehicle is a 404. Asked only here: a page with fixes proves the
		// vehicle exists.
		ctx, cancel := s.queryContext(c)
		defer cancel()
		if _, err := s.cfg.Vehicles.Get(ctx, q.Plate); err != nil {
			fail(c, fmt.Errorf("vehicle %s: %w", q.Plate, err))
			return
		}
	}
	if r.format == "geojson" {
		fc := trackGeoJSON(q, fixes, next)
		if len(fc.Features) > 0 {
			fc.Features[0].Properties.Simplification = simplified
			fc.Features[0].Properties.HistoryFrom = keptFrom
		}
		writeJSON(c, http.StatusOK, contentGeoJSON, fc)
		return
	}
	out := trackJSON{Plate: q.Plate, From: q.From.UTC(), To: q.To.UTC(), NextCursor: next, Simplification: simplified,
		HistoryFrom: keptFrom}
	body, err := encodeTrack(&out, fixes)
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, contentJSON, body)
}

// encodeTrack encodes out, with fixes as its points, as encoding/json
// would encode trackJSON (the same fields, in the same order), but
// several times faster: a day's track is 8,640 points, and encoding them
// by reflection took most of the request's time.
func encodeTrack(out *trackJSON, fixes []vehicles.Fix) ([]byte, error) {
	b := make([]byte, 0, 256+len(fixes)*170)
	b = append(b, `{"plate":`...)
	b = appendJSONString(b, out.Plate)
	b = append(out.From.AppendFormat(append(b, `,"from":"`...), time.RFC3339Nano), '"')
	b = append(out.To.AppendFormat(append(b, `,"to":"`...), time.RFC3339Nano), '"')
	b = append(b, `,"points":[`...)
	for i := range fixes {
		f := &fixes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"fix_time":"`...)
		b = append(f.FixTime.UTC().AppendFormat(b, time.RFC3339Nano), `","received_at":"`...)
		b = append(f.ReceivedAt.UTC().AppendFormat(b, time.RFC3339Nano), `","lat":`...)
		b = appendNumber(b, f.Lat)
		b = appendNumber(append(b, `,"lng":`...), f.Lng)
		b = appendNumber(append(b, `,"speed_kmh":`...), f.SpeedKmh)
		b = append(b, `,"course_deg":`...)
		if f.CourseDeg != nil {
			b = appendNumber(b, *f.CourseDeg)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"flags":[`...)
		for j, fl := range f.Flags {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, fl)
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"next_cursor":`...)
	if out.NextCursor != nil {
		b = appendJSONString(b, *out.NextCursor)
	} else {
		b = append(b, "null"...)
	}
	if out.Simplification != nil {
		s, err := json.Marshal(out.Simplification)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"simplification":`...), s...)
	}
	if out.HistoryFrom != nil {
		b = append(out.HistoryFrom.UTC().AppendFormat(append(b, `,"history_from":"`...), time.RFC3339Nano), '"')
	}
	return append(b, '}'), nil
}

// GeoJSON (RFC 7946) of a track page.
type (
	featureCollection struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}
	feature struct {
		Type       string          `json:"type"`
		Geometry   geometry        `json:"geometry"`
		Properties trackProperties `json:"properties"`
	}
	geometry struct {
		Type        string `json:"type"`
		Coordinates any    `json:"coordinates"`
	}
	// trackProperties carry per-fix values in arrays parallel to the
	// coordinates, the shape map libraries animate a replay from.
	trackProperties struct {
		Plate      string      `json:"plate"`
		From       time.Time   `json:"from"`
		To         time.Time   `json:"to"`
		FixTimes   []time.Time `json:"fix_times"`
		SpeedsKmh  []float64   `json:"speeds_kmh"`
		NextCursor *string     `json:"next_cursor"`
		// Simplification and HistoryFrom are as in trackJSON.
		Simplification *simplificationJSON `json:"simplification,omitempty"`
		HistoryFrom    *time.Time          `json:"history_from,omitempty"`
	}
)

// trackGeoJSON is a page as one LineString feature; a LineString needs
// two positions, so one fix is a Point and none an empty collection.
func trackGeoJSON(q vehicles.TrackQuery, fixes []vehicles.Fix, next *string) featureCollection {
	fc := featureCollection{Type: "FeatureCollection", Features: []feature{}}
	if len(fixes) == 0 {
		return fc
	}
	props := trackProperties{
		Plate: q.Plate, From: q.From.UTC(), To: q.To.UTC(),
		FixTimes: make([]time.Time, len(fixes)), SpeedsKmh: make([]float64, len(fixes)), NextCursor: next,
	}
	coords := make([][2]float64, len(fixes))
	for i, f := range fixes {
		coords[i] = [2]float64{f.Lng, f.Lat} // GeoJSON is [lng, lat]
		props.FixTimes[i] = f.FixTime.UTC()
		props.SpeedsKmh[i] = f.SpeedKmh
	}
	g := geometry{Type: "LineString", Coordinates: coords}
	if len(coords) == 1 {
		g = geometry{Type: "Point", Coordinates: coords[0]}
	}
	fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: g, Properties: props})
	return fc
}
