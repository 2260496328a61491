package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/track"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// jobTrackJSON is a page of a job's track (format=json): the vehicle's
// fixes of the job's window, each marked with the stop the vehicle was at,
// and the stops. From and To are null for a job that has not started.
type jobTrackJSON struct {
	JobID      string              `json:"job_id"`
	Vehicle    string              `json:"vehicle"`
	From       *time.Time          `json:"from"`
	To         *time.Time          `json:"to"`
	Stops      []jobStopJSON       `json:"stops"`
	Points     []jobTrackPointJSON `json:"points"`
	NextCursor *string             `json:"next_cursor"`
	// Simplification is set for a simplified track (max_points).
	Simplification *simplificationJSON `json:"simplification,omitempty"`
}

// jobTrackPointJSON is a fix, with the stop the vehicle was at when it
// was taken (arrived and not yet departed), null between stops.
type jobTrackPointJSON struct {
	trackPointJSON
	StopIndex *int `json:"stop_index"`
}

// playbackJSON is format=playback: the original system's shape, {
// total_distance, paths: [[lng, lat]], meta: [{speed, course, time,
// distance}]}, with the job, its window and stops and the paging of the
// other formats. Distances are metres driven from the job's start,
// measured as its completion is: over the whole window (whatever page),
// with domain/track's noise filter, interpolated at the window's ends.
type playbackJSON struct {
	JobID         string         `json:"job_id"`
	Vehicle       string         `json:"vehicle"`
	From          *time.Time     `json:"from"`
	To            *time.Time     `json:"to"`
	TotalDistance float64        `json:"total_distance"`
	Paths         [][2]float64   `json:"paths"`
	Meta          []playbackMeta `json:"meta"`
	Stops         []jobStopJSON  `json:"stops"`
	NextCursor    *string        `json:"next_cursor"`
	// Simplification is set for a simplified track (max_points): paths
	// and meta hold the points kept, their distances measured over every
	// fix as without it.
	Simplification *simplificationJSON `json:"simplification,omitempty"`
}

type playbackMeta struct {
	Speed    float64   `json:"speed"`
	Course   *float64  `json:"course"`
	Time     time.Time `json:"time"`
	Distance float64   `json:"distance"`
}

// GeoJSON of a job's track: the line of the page's fixes, then a point
// per stop at its station's reference point.
type (
	jobFeature struct {
		Type       string   `json:"type"`
		Geometry   geometry `json:"geometry"`
		Properties any      `json:"properties"`
	}
	jobLineProperties struct {
		Feature    string      `json:"feature"`
		JobID      string      `json:"job_id"`
		Vehicle    string      `json:"vehicle"`
		From       *time.Time  `json:"from"`
		To         *time.Time  `json:"to"`
		FixTimes   []time.Time `json:"fix_times"`
		SpeedsKmh  []float64   `json:"speeds_kmh"`
		NextCursor *string     `json:"next_cursor"`
		// Simplification is set for a simplified track (max_points).
		Simplification *simplificationJSON `json:"simplification,omitempty"`
	}
	jobStopProperties struct {
		Feature     string     `json:"feature"`
		Index       int        `json:"index"`
		StationID   string     `json:"station_id"`
		StationName string     `json:"station_name"`
		Kind        string     `json:"kind"`
		Status      string     `json:"status"`
		ArrivedAt   *time.Time `json:"arrived_at"`
		DepartedAt  *time.Time `json:"departed_at"`
	}
)

// jobWindow is the time window of j's track, both ends included (see
// jobs.Job.Window); ok is false for a job that never started.
func jobWindow(j *jobs.Job, now time.Time) (from, to time.Time, ok bool) { return j.Window(now) }

// jobTrack serves GET /api/v1/jobs/{id}/track.
func (s *server) jobTrack(c *gin.Context) {
	p := newParams(c.Request)
	id := p.jobID(c.Param("id"))
	limit := p.limit(defaultTrackLimit, maxTrackLimit)
	after := p.timeCursor()
	format := p.oneOf("format", "json", "json", "geojson", "playback")
	maxPoints := p.maxPoints(s.cfg.History.MaxPoints)
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	j, err := s.readJob(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	stops := toJobJSON(&j).Stops
	from, to, started := jobWindow(&j, s.cfg.Now())
	var window [2]*time.Time
	if started {
		window = [2]*time.Time{utc(&from), utc(&to)}
	}
	// A simplified track is the job's window through the one helper every
	// track endpoint uses; the window includes its end, and fix times are
	// stored to the microsecond.
	var simplified *simplifiedTrack
	if maxPoints > 0 && started {
		st, err := s.simplify(c, j.Vehicle, from, to.Add(time.Microsecond), maxPoints)
		if err != nil {
			fail(c, err)
			return
		}
		simplified = &st
	}
	if format == "playback" {
		out, err := s.playback(c, &j, from, to, started, after, limit, simplified)
		if err != nil {
			fail(c, err)
			return
		}
		out.JobID, out.Vehicle, out.From, out.To, out.Stops = j.ID, j.Vehicle, window[0], window[1], stops
		if simplified != nil {
			out.Simplification = &simplified.info
		}
		writeJSON(c, http.StatusOK, contentJSON, out)
		return
	}
	var fixes []vehicles.Fix
	var next *string
	var info *simplificationJSON
	if simplified != nil {
		fixes, info = simplified.fixes, &simplified.info
	} else if started {
		ctx, cancel := s.queryContext(c)
		defer cancel()
		// The window includes its end; fix times are stored to the
		// microsecond.
		fixes, err = s.cfg.Vehicles.Track(ctx, vehicles.TrackQuery{
			Plate: j.Vehicle, From: from, To: to.Add(time.Microsecond), After: after, Limit: limit + 1,
		})
		if err != nil {
			fail(c, err)
			return
		}
		if len(fixes) > limit {
			fixes = fixes[:limit]
			next = timeCursor(fixes[limit-1].FixTime)
		}
	}
	if format == "geojson" {
		writeJSON(c, http.StatusOK, contentGeoJSON, jobTrackGeoJSON(&j, window, fixes, stops, next, info))
		return
	}
	out := jobTrackJSON{JobID: j.ID, Vehicle: j.Vehicle, From: window[0], To: window[1], Stops: stops,
		Points: make([]jobTrackPointJSON, len(fixes)), NextCursor: next, Simplification: info}
	for i, f := range fixes {
		out.Points[i] = jobTrackPointJSON{
			trackPointJSON: trackPointJSON{
				FixTime: f.FixTime.UTC(), ReceivedAt: f.ReceivedAt.UTC(),
				Lat: f.Lat, Lng: f.Lng, SpeedKmh: f.SpeedKmh, CourseDeg: f.CourseDeg, Flags: nonNil(f.Flags),
			},
			StopIndex: stopAt(j.Stops, f.FixTime),
		}
	}
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// stopAt is the index of the stop the vehicle was at at t: arrived by t
// and not departed before it; nil when none.
func stopAt(stops []job.StopProgress, t time.Time) *int {
	for _, s := range stops {
		if s.ArrivedAt != nil && !t.Before(*s.ArrivedAt) && (s.DepartedAt == nil || !t.After(*s.DepartedAt)) {
			i := s.Index
			return &i
		}
	}
	return nil
}

func jobTrackGeoJSON(j *jobs.Job, window [2]*time.Time, fixes []vehicles.Fix, stops []jobStopJSON, next *string,
	simplified *simplificationJSON) any {
	features := []jobFeature{}
	if len(fixes) > 0 {
		props := jobLineProperties{Feature: "track", JobID: j.ID, Vehicle: j.Vehicle, From: window[0], To: window[1],
			FixTimes: make([]time.Time, len(fixes)), SpeedsKmh: make([]float64, len(fixes)), NextCursor: next,
			Simplification: simplified}
		coords := make([][2]float64, len(fixes))
		for i, f := range fixes {
			coords[i] = [2]float64{f.Lng, f.Lat}
			props.FixTimes[i], props.SpeedsKmh[i] = f.FixTime.UTC(), f.SpeedKmh
		}
		g := geometry{Type: "LineString", Coordinates: coords}
		if len(coords) == 1 {
			g = geometry{Type: "Point", Coordinates: coords[0]}
		}
		features = append(features, jobFeature{Type: "Feature", Geometry: g, Properties: props})
	}
	for _, s := range stops {
		features = append(features, jobFeature{Type: "Feature",
			Geometry: geometry{Type: "Point", Coordinates: [2]float64{s.Point.Lng, s.Point.Lat}},
			Properties: jobStopProperties{Feature: "stop", Index: s.Index, StationID: s.StationID, StationName: s.StationName,
				Kind: s.Kind, Status: s.Status, ArrivedAt: s.ArrivedAt, DepartedAt: s.DepartedAt}})
	}
	return struct {
		Type     string       `json:"type"`
		Features []jobFeature `json:"features"`
	}{"FeatureCollection", features}
}

// playback measures the job's window [from, to] and returns the page of
// its fixes after the cursor, at most limit (or, simplified, the fixes
// the simplification kept, whole): every fix of the window is
// read (at most PlaybackMaxFixes), with the fix just before and just
// after it, and measured with track.DefaultFilter as domain/job measures a
// completion, so that the page's distances and total_distance agree with
// the job's completion (of the latest revision, once the late fixes that
// amended it are in).
func (s *server) playback(c *gin.Context, j *jobs.Job, from, to time.Time, started bool, after *time.Time, limit int,
	simplified *simplifiedTrack) (playbackJSON, error) {
	out := playbackJSON{Paths: [][2]float64{}, Meta: []playbackMeta{}}
	if !started {
		return out, nil
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	maxFixes := s.cfg.PlaybackMaxFixes
	fixes, err := s.cfg.Vehicles.Track(ctx, vehicles.TrackQuery{Plate: j.Vehicle, From: from, To: to.Add(time.Microsecond), Limit: maxFixes + 1})
	if err != nil {
		return out, err
	}
	if len(fixes) > maxFixes {
		p := &params{}
		p.fail("format", "the job's window holds more than %d fixes, more than playback measures at once "+
			"(TMS_HTTP_PLAYBACK_MAX_FIXES); page through it with format=json", maxFixes)
		return out, p.err()
	}
	before, afterFix, err := s.cfg.Vehicles.Around(ctx, j.Vehicle, from, to)
	if err != nil {
		return out, err
	}
	measured := make([]track.Fix, 0, len(fixes)+2)
	add := func(f *vehicles.Fix) {
		measured = append(measured, track.Fix{Time: f.FixTime, Point: geo.Point{Lat: f.Lat, Lng: f.Lng}, SpeedKmh: f.SpeedKmh})
	}
	if before != nil {
		add(before)
	}
	for i := range fixes {
		add(&fixes[i])
	}
	if afterFix != nil {
		add(afterFix)
	}
	path := track.DefaultFilter.Measure(measured)
	// As domain/job splits a completion's distance: empty to the first
	// loading arrival, loaded from there, each rounded, then summed.
	firstLoading := to
	for _, st := range j.Stops {
		if st.Kind == job.KindLoading && st.ArrivedAt != nil && st.ArrivedAt.Before(firstLoading) {
			firstLoading = *st.ArrivedAt
		}
	}
	out.TotalDistance = round1(round1(path.Between(from, firstLoading)) + round1(path.Between(firstLoading, to)))
	base := path.At(from)
	var kept map[time.Time]bool
	if simplified != nil {
		kept = make(map[time.Time]bool, len(simplified.fixes))
		for _, f := range simplified.fixes {
			kept[f.FixTime.UTC()] = true
		}
		limit = len(simplified.fixes) + 1 // one answer, no pages
	}
	for _, f := range fixes {
		if after != nil && !f.FixTime.After(*after) || kept != nil && !kept[f.FixTime.UTC()] {
			continue
		}
		if len(out.Paths) == limit {
			out.NextCursor = timeCursor(out.Meta[limit-1].Time)
			break
		}
		out.Paths = append(out.Paths, [2]float64{f.Lng, f.Lat})
		out.Meta = append(out.Meta, playbackMeta{Speed: f.SpeedKmh, Course: f.CourseDeg, Time: f.FixTime.UTC(),
			Distance: round1(math.Max(path.At(f.FixTime)-base, 0))})
	}
	return out, nil
}

// round1 rounds metres to one decimal, as job events carry them.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
