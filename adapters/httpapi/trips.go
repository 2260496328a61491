package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/track"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Bounds of GET /api/v1/vehicles/{plate}/trips and /stops.
const (
	defaultTripsWindow = 24 * time.Hour
	defaultTripsLimit  = 100
	maxTripsLimit      = 1000
)

// segmentStationJSON is the station at a trip's end or a stop.
type segmentStationJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// tripEndJSON is one end of a trip: where and when the vehicle last stood
// before it, or first stood after it.
type tripEndJSON struct {
	Time    time.Time           `json:"time"`
	Lat     float64             `json:"lat"`
	Lng     float64             `json:"lng"`
	Station *segmentStationJSON `json:"station"`
}

// tripJSON is a trip as the API shows it.
type tripJSON struct {
	ID       string `json:"id"`
	Vehicle  string `json:"vehicle"`
	Revision int    `json:"revision"`
	// Open: still under way; its end is the last fix so far.
	Open        bool        `json:"open"`
	Start       tripEndJSON `json:"start"`
	End         tripEndJSON `json:"end"`
	DurationS   float64     `json:"duration_s"`
	DistanceM   float64     `json:"distance_m"`
	MaxSpeedKmh float64     `json:"max_speed_kmh"`
	// AvgSpeedKmh is the distance over the moving time.
	AvgSpeedKmh float64     `json:"avg_speed_kmh"`
	MovingS     float64     `json:"moving_s"`
	IdleS       float64     `json:"idle_s"`
	Fixes       int         `json:"fixes"`
	Noise       track.Noise `json:"noise"`
	JobID       *string     `json:"job_id"`
	Flags       []string    `json:"flags"`
}

// tripListJSON is a page of a vehicle's trips; NextCursor is null on the
// last.
type tripListJSON struct {
	Vehicle    string     `json:"vehicle"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Trips      []tripJSON `json:"trips"`
	NextCursor *string    `json:"next_cursor"`
}

// stopJSON is a stop as the API shows it: from the end of one trip to the
// start of the next, where the first ended.
type stopJSON struct {
	ID        string              `json:"id"`
	Vehicle   string              `json:"vehicle"`
	Revision  int                 `json:"revision"`
	Open      bool                `json:"open"`
	StartTime time.Time           `json:"start_time"`
	EndTime   time.Time           `json:"end_time"`
	DurationS float64             `json:"duration_s"`
	Lat       float64             `json:"lat"`
	Lng       float64             `json:"lng"`
	Station   *segmentStationJSON `json:"station"`
	JobID     *string             `json:"job_id"`
	Fixes     int                 `json:"fixes"`
	Flags     []string            `json:"flags"`
}

// stopListJSON is a page of a vehicle's stops.
type stopListJSON struct {
	Vehicle    string     `json:"vehicle"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Stops      []stopJSON `json:"stops"`
	NextCursor *string    `json:"next_cursor"`
}

// tripTrackJSON is a page of a trip's track: the vehicle's fixes from the
// trip's start to its end, both included, in the track's shape.
type tripTrackJSON struct {
	TripID string `json:"trip_id"`
	trackJSON
}

func toSegmentStation(s *trips.Station) *segmentStationJSON {
	if s == nil {
		return nil
	}
	return &segmentStationJSON{ID: s.ID, Name: s.Name, Type: s.Type}
}

func toTripJSON(t *trips.Trip) tripJSON {
	end := func(e trips.End) tripEndJSON {
		return tripEndJSON{Time: e.Time.UTC(), Lat: e.Lat, Lng: e.Lng, Station: toSegmentStation(e.Station)}
	}
	out := tripJSON{
		ID: t.ID, Vehicle: t.Vehicle, Revision: t.Revision, Open: t.Open, Start: end(t.Start), End: end(t.End),
		DurationS: seconds(t.End.Time.Sub(t.Start.Time)), DistanceM: t.DistanceM, MaxSpeedKmh: t.MaxSpeedKmh,
		MovingS: t.MovingS, IdleS: t.IdleS, Fixes: t.Fixes,
		Noise: track.Noise{FixesUsed: t.FixesUsed, FixesDropped: t.FixesDropped, DistanceDroppedM: t.DistanceDroppedM},
		JobID: nonEmpty(t.JobID), Flags: nonNil(t.Flags),
	}
	if t.MovingS > 0 {
		out.AvgSpeedKmh = math.Round(t.DistanceM/t.MovingS*36) / 10
	}
	return out
}

func toStopJSON(s *trips.Stop) stopJSON {
	return stopJSON{
		ID: s.ID, Vehicle: s.Vehicle, Revision: s.Revision, Open: s.Open, StartTime: s.Start.UTC(), EndTime: s.End.UTC(),
		DurationS: seconds(s.End.Sub(s.Start)), Lat: s.Lat, Lng: s.Lng, Station: toSegmentStation(s.Station),
		JobID: nonEmpty(s.JobID), Fixes: s.Fixes, Flags: nonNil(s.Flags),
	}
}

// seconds is d in seconds, to the millisecond.
func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// parseSegments reads and checks a trips or stops list request, naming
// every bad field.
func parseSegments(c *gin.Context, now time.Time) (trips.Query, error) {
	p := newParams(c.Request)
	q := trips.Query{Vehicle: p.plate("plate", c.Param("plate"))}
	q.From, q.To, _ = p.window(now, defaultTripsWindow)
	q.Limit = p.limit(defaultTripsLimit, maxTripsLimit)
	q.After = p.timeCursor()
	return q, p.err()
}

// listTrips serves GET /api/v1/vehicles/{plate}/trips: the vehicle's
// trips that overlap [from, to), in start order, so that a day reads as
// it was driven.
func (s *server) listTrips(c *gin.Context) {
	q, err := parseSegments(c, s.cfg.Now())
	if err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more than the page tells whether another page follows
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Trips.Trips(ctx, q)
	if err == nil && len(list) == 0 {
		err = s.knownVehicle(c, q.Vehicle)
	}
	if err != nil {
		fail(c, err)
		return
	}
	out := tripListJSON{Vehicle: q.Vehicle, From: q.From.UTC(), To: q.To.UTC()}
	out.Trips, out.NextCursor = page(list, limit, func(t *trips.Trip) *string { return timeCursor(t.Start.Time) }, toTripJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// listStops serves GET /api/v1/vehicles/{plate}/stops, as listTrips.
func (s *server) listStops(c *gin.Context) {
	q, err := parseSegments(c, s.cfg.Now())
	if err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Trips.Stops(ctx, q)
	if err == nil && len(list) == 0 {
		err = s.knownVehicle(c, q.Vehicle)
	}
	if err != nil {
		fail(c, err)
		return
	}
	out := stopListJSON{Vehicle: q.Vehicle, From: q.From.UTC(), To: q.To.UTC()}
	out.Stops, out.NextCursor = page(list, limit, func(st *trips.Stop) *string { return timeCursor(st.Start) }, toStopJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// fleetTripListJSON is a page of the fleet's trips.
type fleetTripListJSON struct {
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Trips      []tripJSON `json:"trips"`
	NextCursor *string    `json:"next_cursor"`
}

// listFleetTrips serves GET /api/v1/trips: every vehicle's trips (or
// those of the plate filter) that overlap [from, to), in start order, for
// a dispatcher's or an analyst's view of a day. Its cursor is the last
// trip's start and id, as a visit's entry cursor.
func (s *server) listFleetTrips(c *gin.Context) {
	p := newParams(c.Request)
	from, to, _ := p.window(s.cfg.Now(), defaultTripsWindow)
	q := trips.FleetQuery{From: from, To: to, Plates: p.plates(maxTripsLimit), Limit: p.limit(defaultTripsLimit, maxTripsLimit)}
	if t, id, ok := p.entryCursor(); ok {
		q.After = &trips.FleetCursor{Start: t, ID: id}
	}
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Trips.FleetTrips(ctx, q)
	if err != nil {
		fail(c, err)
		return
	}
	out := fleetTripListJSON{From: q.From.UTC(), To: q.To.UTC()}
	out.Trips, out.NextCursor = page(list, limit, func(t *trips.Trip) *string { return entryCursor(t.Start.Time, t.ID) }, toTripJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// knownVehicle tells an empty list of a known vehicle (an answer) from an
// unknown vehicle (a 404). Asked only for empty lists.
func (s *server) knownVehicle(c *gin.Context, plate string) error {
	ctx, cancel := s.queryContext(c)
	defer cancel()
	if _, err := s.cfg.Vehicles.Get(ctx, plate); err != nil {
		return fmt.Errorf("vehicle %s: %w", plate, err)
	}
	return nil
}

// tripID reads a trip id from the path: a UUID, returned in the
// canonical form the store keeps.
func (p *params) tripID(raw string) string {
	u, err := uuid.Parse(raw)
	if err != nil {
		p.fail("id", "%q is not a trip id (a UUID such as 5b8e0c6a-1f3d-5e2a-9c47-0d6b8a3f2e11)", clip(raw))
		return ""
	}
	return u.String()
}

// getTrip serves GET /api/v1/trips/{id}.
func (s *server) getTrip(c *gin.Context) {
	p := newParams(c.Request)
	id := p.tripID(c.Param("id"))
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	t, err := s.readTrip(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, toTripJSON(&t))
}

func (s *server) readTrip(c *gin.Context, id string) (trips.Trip, error) {
	ctx, cancel := s.queryContext(c)
	defer cancel()
	return s.cfg.Trips.Trip(ctx, id)
}

// tripTrack serves GET /api/v1/trips/{id}/track: the vehicle's fixes from
// the trip's start to its end (both included), paged and shaped as a
// vehicle's track, in JSON or GeoJSON; with max_points, simplified whole
// as a vehicle's track is.
func (s *server) tripTrack(c *gin.Context) {
	p := newParams(c.Request)
	id := p.tripID(c.Param("id"))
	limit := p.limit(defaultTrackLimit, maxTrackLimit)
	after := p.timeCursor()
	format := p.oneOf("format", "json", "json", "geojson")
	maxPoints := p.maxPoints(s.cfg.History.MaxPoints)
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	t, err := s.readTrip(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	// Fix times are stored to the microsecond: the end is included.
	q := vehicles.TrackQuery{Plate: t.Vehicle, From: t.Start.Time, To: t.End.Time.Add(time.Microsecond), After: after, Limit: limit + 1}
	var fixes []vehicles.Fix
	var next *string
	var simplified *simplificationJSON
	if maxPoints > 0 {
		st, err := s.simplify(c, q.Plate, q.From, q.To, maxPoints)
		if err != nil {
			fail(c, err)
			return
		}
		fixes, simplified = st.fixes, &st.info
	} else {
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
	q.To = t.End.Time
	if format == "geojson" {
		fc := trackGeoJSON(q, fixes, next)
		if len(fc.Features) > 0 {
			fc.Features[0].Properties.Simplification = simplified
		}
		writeJSON(c, http.StatusOK, contentGeoJSON, fc)
		return
	}
	out := tripTrackJSON{TripID: t.ID, trackJSON: trackJSON{Plate: t.Vehicle, From: q.From.UTC(), To: q.To.UTC(),
		Points: make([]trackPointJSON, len(fixes)), NextCursor: next, Simplification: simplified}}
	for i, f := range fixes {
		out.Points[i] = trackPointJSON{
			FixTime: f.FixTime.UTC(), ReceivedAt: f.ReceivedAt.UTC(),
			Lat: f.Lat, Lng: f.Lng, SpeedKmh: f.SpeedKmh, CourseDeg: f.CourseDeg, Flags: nonNil(f.Flags),
		}
	}
	writeJSON(c, http.StatusOK, contentJSON, out)
}
