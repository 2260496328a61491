package job

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/track"
)

// Command types: what the API appends to tms.jobs for the job processor
// to decide. Consumers of the job events skip them by type.
const (
	TypeCreateJob = "tms.command.create_job.v1"
	TypeCancelJob = "tms.command.cancel_job.v1"
)

// Created is the data of tms.job.created.v1: the job as accepted.
type Created struct {
	JobID       string         `json:"job_id"`
	Vehicle     string         `json:"vehicle"`
	ExternalRef string         `json:"external_ref,omitempty"`
	Status      string         `json:"status"`
	Cargo       Cargo          `json:"cargo"`
	Stops       []StopProgress `json:"stops"`
	CreatedAt   time.Time      `json:"created_at"`
}

// Started is the data of tms.job.started.v1.
type Started struct {
	JobID       string    `json:"job_id"`
	Vehicle     string    `json:"vehicle"`
	ExternalRef string    `json:"external_ref,omitempty"`
	StartedAt   time.Time `json:"started_at"`
}

// StopEvent is the data of tms.job.stop_arrived.v1 and
// tms.job.stop_departed.v1: the stop as it stands after the event.
type StopEvent struct {
	JobID       string `json:"job_id"`
	Vehicle     string `json:"vehicle"`
	ExternalRef string `json:"external_ref,omitempty"`
	StopProgress
	// Where the vehicle was when it arrived or departed.
	At Point `json:"at"`
}

// Distances are a completed job's distances driven, in metres.
type Distances struct {
	// Empty is from the start to the first loading arrival.
	Empty float64 `json:"empty"`
	// Loaded is from the first loading arrival to the last departure.
	Loaded float64 `json:"loaded"`
	// Total is Empty + Loaded: from the start to the last departure.
	Total float64 `json:"total"`
}

// Leg is the way from a loading stop to an unloading stop served after
// it: the straight line between the two stations' reference points and the
// distance driven from the departure at the one to the arrival at the
// other.
type Leg struct {
	FromStop      int     `json:"from_stop"`
	ToStop        int     `json:"to_stop"`
	FromStationID string  `json:"from_station_id"`
	ToStationID   string  `json:"to_station_id"`
	StraightLineM float64 `json:"straight_line_m"`
	DrivenM       float64 `json:"driven_m"`
}

// Completion is the data of tms.job.completed.v1 (revision 1) and
// tms.job.amended.v1 (revision 2 and later): everything billing charges
// from.
type Completion struct {
	JobID       string         `json:"job_id"`
	Vehicle     string         `json:"vehicle"`
	ExternalRef string         `json:"external_ref,omitempty"`
	Revision    int            `json:"revision"`
	StartedAt   time.Time      `json:"started_at"`
	CompletedAt time.Time      `json:"completed_at"`
	DurationS   float64        `json:"duration_s"`
	Stops       []StopProgress `json:"stops"`
	DistanceM   Distances      `json:"distance_m"`
	Legs        []Leg          `json:"legs"`
	Noise       track.Noise    `json:"noise"`
	Cargo       Cargo          `json:"cargo"`
	// AmendedBecause says why a revision after the first was made.
	AmendedBecause string `json:"amended_because,omitempty"`
}

// AmendedLateFixes is why a completion is amended: fixes of the job's
// time window arrived after it was settled.
const AmendedLateFixes = "late_fixes"

// Cancelled is the data of tms.job.cancelled.v1.
type Cancelled struct {
	JobID       string         `json:"job_id"`
	Vehicle     string         `json:"vehicle"`
	ExternalRef string         `json:"external_ref,omitempty"`
	Reason      string         `json:"reason"`
	CancelledAt time.Time      `json:"cancelled_at"`
	WasStatus   string         `json:"was_status"`
	Stops       []StopProgress `json:"stops"`
}

// Source is the CloudEvents source of the job processor's events.
const Source = "/tms/jobs"

// CommandSource is the CloudEvents source of the API's job commands.
const CommandSource = "/tms/api/jobs"

// Event encodes a create command.
func (c Create) Event() (event.Envelope, error) {
	return event.New(TypeCreateJob, CommandSource, c.Vehicle, c.RequestedAt, c, c.JobID)
}

// Event encodes a cancel command.
func (c Cancel) Event() (event.Envelope, error) {
	return event.New(TypeCancelJob, CommandSource, c.Vehicle, c.RequestedAt, c, c.JobID, c.RequestedAt.Format(time.RFC3339Nano))
}

func newEvent(typ, vehicle string, at time.Time, data any, idParts ...string) event.Envelope {
	e, err := event.New(typ, Source, vehicle, ms(at), data, idParts...)
	if err != nil {
		// Job data is strings, finite numbers and times.
		panic(fmt.Sprintf("job: encode %s: %v", typ, err))
	}
	return e
}

// DecodeInput reads a tms.jobs envelope as the job processor's input:
// commands give an Input; the processor's own events, which it does not
// read back, an empty one.
func DecodeInput(e event.Envelope) (Input, error) {
	switch e.Type {
	case TypeCreateJob:
		var c Create
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return Input{}, fmt.Errorf("%s: %w", e.Type, err)
		}
		if c.JobID == "" || c.Vehicle == "" || len(c.Stops) == 0 {
			return Input{}, fmt.Errorf("%s: job_id, vehicle and stops are required", e.Type)
		}
		return Input{Create: &c}, nil
	case TypeCancelJob:
		var c Cancel
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return Input{}, fmt.Errorf("%s: %w", e.Type, err)
		}
		if c.JobID == "" || c.Vehicle == "" {
			return Input{}, fmt.Errorf("%s: job_id and vehicle are required", e.Type)
		}
		return Input{Cancel: &c}, nil
	}
	return Input{}, nil
}
