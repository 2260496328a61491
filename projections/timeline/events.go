package timeline

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/position"
	pgeofence "github.com/tmsfleet/tms/pipeline/geofence"
	"github.com/tmsfleet/tms/pipeline/ingest"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// positionEvent rebuilds the tms.position.reported.v1 event of a stored
// fix: every field of it is stored, and its id derives from the plate and
// the fix time.
func positionEvent(plate string, f *vehicles.Fix) (event.Envelope, error) {
	p := position.Position{Plate: plate, FixTime: f.FixTime, ReceivedAt: f.ReceivedAt, Lat: f.Lat, Lng: f.Lng,
		SpeedKmh: f.SpeedKmh, Course: f.CourseDeg, Flags: f.Flags}
	e, err := p.Event(ingest.Source)
	if err != nil {
		return event.Envelope{}, fmt.Errorf("position of %s at %s: %w", plate, f.FixTime, err)
	}
	return e, nil
}

// visitData is geofence.Visit with the place optional: a visit's place is
// interpolated from the fixes around it, and without any it is left out
// rather than made up. Its fields are geofence.Visit's, in its order.
type visitData struct {
	Vehicle        string     `json:"vehicle"`
	StationID      string     `json:"station_id"`
	StationType    string     `json:"station_type"`
	StationVersion int64      `json:"station_version"`
	VisitID        string     `json:"visit_id"`
	FixTime        time.Time  `json:"fix_time"`
	Lat            *float64   `json:"lat,omitempty"`
	Lng            *float64   `json:"lng,omitempty"`
	Flags          []string   `json:"flags"`
	InitialCause   string     `json:"initial_cause,omitempty"`
	EnteredAt      *time.Time `json:"entered_at,omitempty"`
	DwellS         *float64   `json:"dwell_s,omitempty"`
	GapS           *float64   `json:"gap_s,omitempty"`
}

// alertData is geofence.Alert with the place optional, as visitData.
type alertData struct {
	Vehicle     string    `json:"vehicle"`
	Alert       string    `json:"alert"`
	StationID   string    `json:"station_id"`
	StationType string    `json:"station_type"`
	VisitID     string    `json:"visit_id"`
	FixTime     time.Time `json:"fix_time"`
	Lat         *float64  `json:"lat,omitempty"`
	Lng         *float64  `json:"lng,omitempty"`
	Flags       []string  `json:"flags"`
}

// visitEvent rebuilds the entry (or exit) of v, placed at p.
func visitEvent(v *visits.Visit, entry bool, p *point) (event.Envelope, error) {
	d := visitData{Vehicle: v.Vehicle, StationID: v.StationID, StationType: v.StationType,
		StationVersion: v.StationVersion, VisitID: v.VisitID}
	d.Lat, d.Lng = p.coords()
	typ := event.TypeEnteredStation
	if entry {
		d.FixTime, d.Flags, d.InitialCause, d.GapS = v.EnteredAt.UTC(), nonNil(v.EntryFlags), v.InitialCause, v.GapS
	} else {
		typ = event.TypeExitedStation
		entered := v.EnteredAt.UTC()
		d.FixTime, d.Flags, d.EnteredAt, d.DwellS, d.GapS = v.ExitedAt.UTC(), nonNil(v.ExitFlags), &entered, v.DwellS, v.ExitGapS
	}
	e, err := event.New(typ, pgeofence.Source, v.Vehicle, d.FixTime, d, v.VisitID)
	if err != nil {
		return event.Envelope{}, fmt.Errorf("visit %s: %w", v.VisitID, err)
	}
	return e, nil
}

// hazardAlert rebuilds the alert the entry v raised, if it is an entry
// into a hazard station.
func hazardAlert(v *visits.Visit, p *point) (event.Envelope, bool, error) {
	if v.StationType != geofence.TypeHazard {
		return event.Envelope{}, false, nil
	}
	d := alertData{Vehicle: v.Vehicle, Alert: geofence.AlertHazardEntered, StationID: v.StationID,
		StationType: v.StationType, VisitID: v.VisitID, FixTime: v.EnteredAt.UTC(), Flags: nonNil(v.EntryFlags)}
	d.Lat, d.Lng = p.coords()
	e, err := event.New(event.TypeAlertRaised, pgeofence.Source, v.Vehicle, d.FixTime, d, geofence.AlertHazardEntered, v.VisitID)
	if err != nil {
		return event.Envelope{}, false, fmt.Errorf("alert of visit %s: %w", v.VisitID, err)
	}
	return e, true, nil
}

// jobEvent rebuilds a job event; place is where the vehicle was at its
// time (asked only for stop events).
func jobEvent(je *jobs.TimelineEvent, place func() *point) (event.Envelope, error) {
	typ, data, ids, err := jobEventData(je, place)
	if err != nil {
		return event.Envelope{}, fmt.Errorf("job %s: %w", je.JobID, err)
	}
	e, err := event.New(typ, job.Source, je.Vehicle, je.At.UTC().Truncate(time.Millisecond), data, ids...)
	if err != nil {
		return event.Envelope{}, fmt.Errorf("job %s: %w", je.JobID, err)
	}
	return e, nil
}

func jobEventData(je *jobs.TimelineEvent, place func() *point) (typ string, data any, ids []string, err error) {
	ids = []string{je.JobID}
	switch je.Kind {
	case jobs.EventCreated:
		var p struct {
			Cargo job.Cargo          `json:"cargo"`
			Stops []job.StopProgress `json:"stops"`
		}
		if err := json.Unmarshal(je.Payload, &p); err != nil {
			return "", nil, nil, err
		}
		for i := range p.Stops {
			// As planned: the progress came later.
			p.Stops[i] = job.StopProgress{Index: p.Stops[i].Index, PlannedStop: p.Stops[i].PlannedStop,
				Status: job.StopPending, Flags: []string{}}
		}
		status := job.StatusQueued
		if je.StartedAt != nil && ms(*je.StartedAt).Equal(ms(je.CreatedAt)) {
			status = job.StatusActive
		}
		return event.TypeJobCreated, job.Created{JobID: je.JobID, Vehicle: je.Vehicle, ExternalRef: je.ExternalRef,
			Status: status, Cargo: p.Cargo, Stops: p.Stops, CreatedAt: je.CreatedAt.UTC()}, ids, nil
	case jobs.EventStarted:
		return event.TypeJobStarted, job.Started{JobID: je.JobID, Vehicle: je.Vehicle, ExternalRef: je.ExternalRef,
			StartedAt: ms(je.At)}, ids, nil
	case jobs.EventStopArrived, jobs.EventStopDeparted:
		var s job.StopProgress
		if err := json.Unmarshal(je.Payload, &s); err != nil {
			return "", nil, nil, err
		}
		typ = event.TypeJobStopDeparted
		if je.Kind == jobs.EventStopArrived {
			typ = event.TypeJobStopArrived
			if s.Status == job.StopDeparted {
				s.Status, s.DepartedAt, s.DwellS = job.StopArrived, nil, nil
			}
		}
		s.Flags = nonNil(s.Flags)
		at := s.Point // the station's reference point, without a fix
		if p := place(); p != nil {
			at = job.Point{Lat: round7(p.lat), Lng: round7(p.lng)}
		}
		return typ, job.StopEvent{JobID: je.JobID, Vehicle: je.Vehicle, ExternalRef: je.ExternalRef,
			StopProgress: s, At: at}, append(ids, strconv.Itoa(s.Index)), nil
	case jobs.EventCompleted:
		// Decoded and encoded again, so that its members come in the
		// event's order rather than jsonb's.
		var c job.Completion
		if err := json.Unmarshal(je.Payload, &c); err != nil {
			return "", nil, nil, err
		}
		typ = event.TypeJobCompleted
		if c.Revision > 1 {
			typ = event.TypeJobAmended
		}
		return typ, c, append(ids, strconv.Itoa(c.Revision)), nil
	case jobs.EventCancelled:
		var p struct {
			Reason string             `json:"reason"`
			Stops  []job.StopProgress `json:"stops"`
		}
		if err := json.Unmarshal(je.Payload, &p); err != nil {
			return "", nil, nil, err
		}
		was := job.StatusQueued
		if je.StartedAt != nil && !je.StartedAt.After(je.At) {
			was = job.StatusActive
		}
		for i := range p.Stops {
			p.Stops[i].Flags = nonNil(p.Stops[i].Flags)
		}
		return event.TypeJobCancelled, job.Cancelled{JobID: je.JobID, Vehicle: je.Vehicle, ExternalRef: je.ExternalRef,
			Reason: p.Reason, CancelledAt: ms(je.At), WasStatus: was, Stops: p.Stops}, ids, nil
	}
	return "", nil, nil, fmt.Errorf("unknown job event kind %d", je.Kind)
}

// coords are p's latitude and longitude rounded to 7 decimals (about
// 1 cm, as the geofence rounds them); nil for no place.
func (p *point) coords() (lat, lng *float64) {
	if p == nil {
		return nil, nil
	}
	la, ln := round7(p.lat), round7(p.lng)
	return &la, &ln
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// ms truncates a time to the millisecond, as the job processor dates its
// events.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
