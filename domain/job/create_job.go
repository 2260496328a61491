package job

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/position"
)

// Limits of a job request.
const (
	// MaxStops bounds a job's stops: real jobs have a handful.
	MaxStops = 50
	// MaxWeightKg bounds the cargo: the heaviest road trains carry about
	// 200 t.
	MaxWeightKg = 200_000
	// MaxDescriptionRunes and MaxExternalRefBytes bound the free text.
	MaxDescriptionRunes = 500
	MaxExternalRefBytes = 128
)

// StopRequest is a stop as a client asks for it.
type StopRequest struct {
	StationID      string
	Kind           string
	PlannedArrival *time.Time
}

// CreateRequest is a job as a client asks for it (POST /api/v1/jobs).
type CreateRequest struct {
	Vehicle     string
	ExternalRef string
	Cargo       Cargo
	Stops       []StopRequest
	// NewVehicle accepts a plate tms has never seen: without it, a typo
	// in the plate would make a job no vehicle ever serves.
	NewVehicle bool
}

// Station is what a job needs to know of a station: that it exists, its
// name and type, and its reference point.
type Station struct {
	ID, Name, Type string
	Point          Point
}

// Facts are what the caller knows when it decides a create: the stations
// the request names, as the read model has them, and whether the vehicle
// has ever reported.
type Facts struct {
	Stations     map[string]Station
	VehicleKnown bool
}

// Create is the data of a tms.command.create_job.v1 record: a validated
// job, with the stations as they stood when it was accepted.
type Create struct {
	JobID       string        `json:"job_id"`
	Vehicle     string        `json:"vehicle"`
	ExternalRef string        `json:"external_ref,omitempty"`
	Cargo       Cargo         `json:"cargo"`
	Stops       []PlannedStop `json:"stops"`
	RequestedAt time.Time     `json:"requested_at"`
}

// jobNamespace scopes the job ids derived from external references.
var jobNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://tms.example/jobs"))

// IDFor returns the id of the job with external reference ref: the same
// reference always names the same job, which is what makes creating a job
// idempotent on it.
func IDFor(ref string) string { return uuid.NewSHA1(jobNamespace, []byte(ref)).String() }

// NewCreate validates r against facts and returns the command, dated at
// (when the API accepted it). A job without an external reference gets
// newID.
func NewCreate(r CreateRequest, facts Facts, at time.Time, newID string) (Create, error) {
	var e errs
	plate, rej := position.NormalizePlate("vehicle", r.Vehicle)
	switch {
	case rej != nil:
		e.add("vehicle", "%s", rej.Detail)
	case !facts.VehicleKnown && !r.NewVehicle:
		e.add("vehicle", "no vehicle %s has reported yet; set new_vehicle to true to plan a job for it anyway", plate)
	}
	ref := strings.TrimSpace(r.ExternalRef)
	switch {
	case len(ref) > MaxExternalRefBytes:
		e.add("external_ref", "at most %d bytes", MaxExternalRefBytes)
	case !utf8.ValidString(ref) || strings.IndexFunc(ref, unicode.IsControl) >= 0:
		e.add("external_ref", "must be printable text")
	}
	w := r.Cargo.WeightKg
	if math.IsNaN(w) || w <= 0 || w > MaxWeightKg {
		e.add("cargo.weight_kg", "must be more than 0 and at most %d", MaxWeightKg)
	}
	if n := utf8.RuneCountInString(r.Cargo.Description); n > MaxDescriptionRunes || !utf8.ValidString(r.Cargo.Description) {
		e.add("cargo.description", "at most %d characters of text", MaxDescriptionRunes)
	}
	stops := checkStops(&e, r.Stops, facts)
	if err := e.err(); err != nil {
		return Create{}, err
	}
	id := newID
	if ref != "" {
		id = IDFor(ref)
	}
	return Create{JobID: id, Vehicle: plate, ExternalRef: ref, Cargo: Cargo{WeightKg: w, Description: r.Cargo.Description},
		Stops: stops, RequestedAt: ms(at)}, nil
}

// checkStops validates the stops: known stations that are not hazard
// zones, known kinds, a loading stop first and an unloading stop last.
func checkStops(e *errs, in []StopRequest, facts Facts) []PlannedStop {
	switch {
	case len(in) < 2:
		e.add("stops", "a job needs at least a loading and an unloading stop")
		return nil
	case len(in) > MaxStops:
		e.add("stops", "at most %d stops", MaxStops)
		return nil
	}
	out := make([]PlannedStop, len(in))
	for i, s := range in {
		field := "stops[" + strconv.Itoa(i) + "]"
		switch s.Kind {
		case KindLoading, KindQuality, KindUnloading:
		default:
			e.add(field+".kind", "must be loading, quality or unloading")
		}
		st, ok := facts.Stations[s.StationID]
		switch {
		case !ok:
			e.add(field+".station_id", "no station %q", clip(s.StationID))
		case st.Type == "hazard":
			e.add(field+".station_id", "station %s is a hazard zone, not a place to stop", s.StationID)
		}
		// A reference point converted from GCJ-02 has float noise in its
		// last digits: 7 decimals (1 cm) are what the events carry.
		out[i] = PlannedStop{StationID: s.StationID, Kind: s.Kind, StationName: st.Name,
			Point: Point{Lat: round7(st.Point.Lat), Lng: round7(st.Point.Lng)}}
		if s.PlannedArrival != nil {
			out[i].PlannedArrival = timePtr(*s.PlannedArrival)
		}
	}
	if in[0].Kind != KindLoading {
		e.add("stops[0].kind", "a job starts with a loading stop")
	}
	if in[len(in)-1].Kind != KindUnloading {
		e.add("stops["+strconv.Itoa(len(in)-1)+"].kind", "a job ends with an unloading stop")
	}
	return out
}

// clip quotes at most 64 bytes of a client's value back to it.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Cancel is the data of a tms.command.cancel_job.v1 record.
type Cancel struct {
	JobID       string    `json:"job_id"`
	Vehicle     string    `json:"vehicle"`
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requested_at"`
}

// MaxReasonRunes bounds a cancellation's reason.
const MaxReasonRunes = 500

// NewCancel validates a cancellation of job id of vehicle, dated at.
func NewCancel(id, vehicle, reason string, at time.Time) (Cancel, error) {
	var e errs
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > MaxReasonRunes || !utf8.ValidString(reason) {
		e.add("reason", "say why, in at most %d characters", MaxReasonRunes)
	}
	if err := e.err(); err != nil {
		return Cancel{}, err
	}
	return Cancel{JobID: id, Vehicle: vehicle, Reason: reason, RequestedAt: ms(at)}, nil
}
