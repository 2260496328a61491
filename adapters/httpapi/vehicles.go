package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/projections/vehicles"
)

// Page sizes of GET /api/v1/vehicles.
const (
	defaultVehiclesLimit = 100
	maxVehiclesLimit     = 1000
)

// vehicleJSON is a vehicle as the API shows it.
type vehicleJSON struct {
	Plate          string       `json:"plate"`
	Position       positionJSON `json:"position"`
	FirstSeen      time.Time    `json:"first_seen"`
	LastSeen       time.Time    `json:"last_seen"`
	PositionsCount int64        `json:"positions_count"`
	// Stations are the stations the vehicle is in now: its open visits.
	Stations []currentStationJSON `json:"stations"`
}

// currentStationJSON is a station a vehicle is in now.
type currentStationJSON struct {
	StationID   string    `json:"station_id"`
	StationType string    `json:"station_type"`
	VisitID     string    `json:"visit_id"`
	EnteredAt   time.Time `json:"entered_at"`
}

// positionJSON is a vehicle's latest fix.
type positionJSON struct {
	Lat        float64   `json:"lat"`
	Lng        float64   `json:"lng"`
	SpeedKmh   float64   `json:"speed_kmh"`
	CourseDeg  *float64  `json:"course_deg"`
	FixTime    time.Time `json:"fix_time"`
	ReceivedAt time.Time `json:"received_at"`
	Flags      []string  `json:"flags"`
}

// vehicleListJSON is a page of vehicles; NextCursor is null on the last.
type vehicleListJSON struct {
	Vehicles   []vehicleJSON `json:"vehicles"`
	NextCursor *string       `json:"next_cursor"`
}

func toVehicleJSON(v *vehicles.Vehicle) vehicleJSON {
	return vehicleJSON{
		Plate: v.Plate,
		Position: positionJSON{
			Lat: v.Lat, Lng: v.Lng, SpeedKmh: v.SpeedKmh, CourseDeg: v.CourseDeg,
			FixTime: v.FixTime.UTC(), ReceivedAt: v.ReceivedAt.UTC(), Flags: nonNil(v.Flags),
		},
		FirstSeen:      v.FirstSeen.UTC(),
		LastSeen:       v.LastSeen.UTC(),
		PositionsCount: v.PositionsCount,
		Stations:       []currentStationJSON{},
	}
}

// currentStations reads the open visits of every vehicle in out, in one
// query for the whole page, and puts them in place.
func (s *server) currentStations(ctx context.Context, out []vehicleJSON) error {
	plates := make([]string, len(out))
	index := make(map[string]int, len(out))
	for i, v := range out {
		plates[i], index[v.Plate] = v.Plate, i
	}
	open, err := s.cfg.Visits.OpenByVehicles(ctx, plates)
	if err != nil {
		return err
	}
	for _, v := range open {
		if i, ok := index[v.Vehicle]; ok {
			out[i].Stations = append(out[i].Stations, currentStationJSON{
				StationID: v.StationID, StationType: v.StationType, VisitID: v.VisitID, EnteredAt: v.EnteredAt.UTC(),
			})
		}
	}
	return nil
}

// listVehicles serves GET /api/v1/vehicles.
func (s *server) listVehicles(c *gin.Context) {
	p := newParams(c.Request)
	q := vehicles.ListQuery{
		Limit:  p.limit(defaultVehiclesLimit, maxVehiclesLimit),
		Plates: p.plates(maxVehiclesLimit),
		BBox:   p.bbox(),
		After:  p.plateCursor(),
		Search: p.search(),
	}
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more than the page tells whether another page follows
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Vehicles.List(ctx, q)
	if err != nil {
		fail(c, err)
		return
	}
	var out vehicleListJSON
	out.Vehicles, out.NextCursor = page(list, limit,
		func(v *vehicles.Vehicle) *string { return plateCursor(v.Plate) }, toVehicleJSON)
	if err := s.currentStations(ctx, out.Vehicles); err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, out)
}

// getVehicle serves GET /api/v1/vehicles/{plate}.
func (s *server) getVehicle(c *gin.Context) {
	p := newParams(c.Request)
	plate := p.plate("plate", c.Param("plate"))
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	v, err := s.cfg.Vehicles.Get(ctx, plate)
	if err != nil {
		fail(c, fmt.Errorf("vehicle %s: %w", plate, err))
		return
	}
	out := []vehicleJSON{toVehicleJSON(&v)}
	if err := s.currentStations(ctx, out); err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, out[0])
}

// nonNil makes an absent list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
