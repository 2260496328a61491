package job

import (
	"math"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// Kinds of stop.
const (
	KindLoading   = "loading"
	KindQuality   = "quality"
	KindUnloading = "unloading"
)

// Statuses of a job.
const (
	StatusQueued    = "queued"
	StatusActive    = "active"
	StatusCompleted = "completed"
	StatusCancelled = "cancelled"
)

// Statuses of a stop.
const (
	StopPending  = "pending"
	StopArrived  = "arrived"
	StopDeparted = "departed"
)

// Flags a stop's arrival or departure can carry, besides the geofence's
// own (initial, gap, station_changed, station_deleted, forgotten), which
// are passed on.
const (
	// FlagInsideAtStart: the vehicle was already in the stop's station
	// when the job started; the arrival is dated at the start.
	FlagInsideAtStart = "inside_at_start"
)

// Cargo is what a job carries.
type Cargo struct {
	WeightKg    float64 `json:"weight_kg"`
	Description string  `json:"description,omitempty"`
}

// Point is a place, in WGS84 degrees rounded to 7 decimals (about 1 cm)
// when encoded.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

func pointOf(p geo.Point) Point { return Point{Lat: round7(p.Lat), Lng: round7(p.Lng)} }

func (p Point) geo() geo.Point { return geo.Point{Lat: p.Lat, Lng: p.Lng} }

// PlannedStop is a stop of a job as it was planned: the station and what
// is done there, with the station's name and reference point (its centre,
// or the first position of its outer ring) as they were when the job was
// created, so that a job's legs do not move when a station does.
type PlannedStop struct {
	StationID      string     `json:"station_id"`
	Kind           string     `json:"kind"`
	PlannedArrival *time.Time `json:"planned_arrival,omitempty"`
	StationName    string     `json:"station_name"`
	Point          Point      `json:"point"`
}

// StopProgress is a stop with how far it has come.
type StopProgress struct {
	Index int `json:"index"`
	PlannedStop
	Status     string     `json:"status"`
	ArrivedAt  *time.Time `json:"arrived_at,omitempty"`
	DepartedAt *time.Time `json:"departed_at,omitempty"`
	DwellS     *float64   `json:"dwell_s,omitempty"`
	// VisitID is the geofence visit that served the stop.
	VisitID string   `json:"visit_id,omitempty"`
	Flags   []string `json:"flags"`
}

// round7 rounds degrees to 7 decimals.
func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// round1 rounds metres or seconds to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// ms truncates a time to the millisecond, the precision of fix times.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func timePtr(t time.Time) *time.Time { t = ms(t); return &t }

func floatPtr(v float64) *float64 { return &v }
