package geofence

import (
	"math"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

// Visit is the data of tms.vehicle.entered_station.v1 and
// tms.vehicle.exited_station.v1 events (schemas in schemas/).
type Visit struct {
	Vehicle        string    `json:"vehicle"`
	StationID      string    `json:"station_id"`
	StationType    string    `json:"station_type"`
	StationVersion int64     `json:"station_version"`
	VisitID        string    `json:"visit_id"`
	FixTime        time.Time `json:"fix_time"`
	Lat            float64   `json:"lat"`
	Lng            float64   `json:"lng"`
	Flags          []string  `json:"flags"`
	InitialCause   string    `json:"initial_cause,omitempty"`
	// EnteredAt and DwellS are set on exits.
	EnteredAt *time.Time `json:"entered_at,omitempty"`
	DwellS    *float64   `json:"dwell_s,omitempty"`
	// GapS is the silence before the decision, when there was one.
	GapS *float64 `json:"gap_s,omitempty"`
}

// Alert is the data of a tms.alert.raised.v1 event.
type Alert struct {
	Vehicle     string    `json:"vehicle"`
	Alert       string    `json:"alert"`
	StationID   string    `json:"station_id"`
	StationType string    `json:"station_type"`
	VisitID     string    `json:"visit_id"`
	FixTime     time.Time `json:"fix_time"`
	Lat         float64   `json:"lat"`
	Lng         float64   `json:"lng"`
	Flags       []string  `json:"flags"`
}

// AlertHazardEntered is the alert raised when a vehicle enters a hazard
// station.
const AlertHazardEntered = "hazard_zone_entered"

// Events encodes a transition as its events, from source: the entry or
// exit, and, for an entry into a hazard station, the alert. Ids derive
// from the visit, so reprocessing gives the same ids.
func (t Transition) Events(source string) ([]event.Envelope, error) {
	flags := t.Flags
	if flags == nil {
		flags = []string{}
	}
	v := Visit{
		Vehicle: t.Vehicle, StationID: t.StationID, StationType: t.StationType, StationVersion: t.StationVersion,
		VisitID: t.VisitID, FixTime: t.At.UTC(), Lat: round7(t.Point.Lat), Lng: round7(t.Point.Lng), Flags: flags,
		InitialCause: t.InitialCause,
	}
	if t.Gap > 0 {
		g := seconds(t.Gap)
		v.GapS = &g
	}
	typ := event.TypeEnteredStation
	if t.Kind == Exited {
		typ = event.TypeExitedStation
		entered, dwell := t.EnteredAt.UTC(), seconds(t.Dwell)
		v.EnteredAt, v.DwellS = &entered, &dwell
	}
	e, err := event.New(typ, source, t.Vehicle, t.At, v, t.VisitID)
	if err != nil {
		return nil, err
	}
	out := []event.Envelope{e}
	if t.Kind == Entered && t.StationType == TypeHazard {
		a := Alert{
			Vehicle: t.Vehicle, Alert: AlertHazardEntered, StationID: t.StationID, StationType: t.StationType,
			VisitID: t.VisitID, FixTime: v.FixTime, Lat: v.Lat, Lng: v.Lng, Flags: flags,
		}
		ae, err := event.New(event.TypeAlertRaised, source, t.Vehicle, t.At, a, AlertHazardEntered, t.VisitID)
		if err != nil {
			return nil, err
		}
		out = append(out, ae)
	}
	return out, nil
}

// round7 rounds degrees to 7 decimals (about 1 cm): a point interpolated
// between two fixes would otherwise carry the float noise of its
// arithmetic (121.40700000000001), which no consumer should have to read.
// A fix's own coordinates with at most 7 decimals come out as given.
func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// seconds is d in seconds, to the millisecond (the precision of fix
// times): Duration.Seconds can carry float noise (1.2389999999999999).
func seconds(d time.Duration) float64 { return float64(d.Round(time.Millisecond).Milliseconds()) / 1e3 }
