package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/visits"
)

// Bounds of the stations endpoints.
const (
	defaultStationsLimit = 100
	maxStationsLimit     = 1000
	// maxInside bounds GET /stations/{id}'s inside list; GET
	// /visits?station=&open=true pages through any number.
	maxInside = 1000
)

// stationJSON is a station as the API shows it: its definition as stored
// (geometry in WGS84, the original when given in GCJ-02), its version and
// since when it stands, and on GET of one station the vehicles inside.
type stationJSON struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	CoordSystem      string            `json:"coord_system"`
	Geometry         json.RawMessage   `json:"geometry"`
	OriginalGeometry json.RawMessage   `json:"original_geometry,omitempty"`
	RadiusM          *float64          `json:"radius_m,omitempty"`
	Detection        station.Detection `json:"detection"`
	Version          int64             `json:"version"`
	UpdatedAt        time.Time         `json:"updated_at"`
	Inside           *[]insideJSON     `json:"inside,omitempty"`
}

// insideJSON is a vehicle inside a station now: an open visit.
type insideJSON struct {
	Vehicle   string    `json:"vehicle"`
	VisitID   string    `json:"visit_id"`
	EnteredAt time.Time `json:"entered_at"`
}

// stationListJSON is a page of stations; NextCursor is null on the last.
type stationListJSON struct {
	Stations   []stationJSON `json:"stations"`
	NextCursor *string       `json:"next_cursor"`
}

func toStationJSON(s *stations.Station) stationJSON {
	return stationJSON{
		ID: s.ID, Name: s.Name, Type: s.Type, CoordSystem: s.CoordSystem,
		Geometry: s.Geometry, OriginalGeometry: s.OriginalGeometry, RadiusM: s.RadiusM,
		Detection: s.Detection, Version: s.Version, UpdatedAt: s.UpdatedAt.UTC(),
	}
}

// etag is a station version's entity tag: strong, since a version names
// exactly one representation of the definition.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// stationLocation is a station's URL path.
func stationLocation(id string) string { return apiPrefix + "/stations/" + url.PathEscape(id) }

// listStations serves GET /api/v1/stations.
func (s *server) listStations(c *gin.Context) {
	p := newParams(c.Request)
	q := stations.ListQuery{
		Limit: p.limit(defaultStationsLimit, maxStationsLimit),
		Types: p.stationTypes(),
		After: p.stationCursor(),
	}
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more than the page tells whether another page follows
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Stations.List(ctx, q)
	if err != nil {
		fail(c, err)
		return
	}
	var out stationListJSON
	out.Stations, out.NextCursor = page(list, limit,
		func(st *stations.Station) *string { return stationCursor(st.ID) }, toStationJSON)
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// getStation serves GET /api/v1/stations/{id}: the station and the
// vehicles inside it now.
func (s *server) getStation(c *gin.Context) {
	p := newParams(c.Request)
	id := p.stationID("id", c.Param("id"))
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	st, err := s.cfg.Stations.Get(ctx, id)
	if err != nil {
		fail(c, err) // names the station
		return
	}
	open, err := s.cfg.Visits.OpenAtStation(ctx, id, maxInside)
	if err != nil {
		fail(c, err)
		return
	}
	out := toStationJSON(&st)
	out.Inside = insideOf(open)
	c.Header("ETag", etag(st.Version))
	writeJSON(c, http.StatusOK, contentJSON, out)
}

func insideOf(open []visits.Visit) *[]insideJSON {
	inside := make([]insideJSON, len(open))
	for i, v := range open {
		inside[i] = insideJSON{Vehicle: v.Vehicle, VisitID: v.VisitID, EnteredAt: v.EnteredAt.UTC()}
	}
	return &inside
}
