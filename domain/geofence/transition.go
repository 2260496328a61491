package geofence

import (
	"time"

	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
)

// Kind says whether a transition is an entry or an exit.
type Kind int

// The kinds of transitions.
const (
	Entered Kind = iota + 1
	Exited
)

func (k Kind) String() string {
	if k == Entered {
		return "entered"
	}
	return "exited"
}

// Flags a transition can carry. They are part of the event contract.
const (
	// FlagInterpolated: inferred from the straight segment between two
	// fixes that both lay outside the station; time and place estimated.
	FlagInterpolated = "interpolated"
	// FlagLate: derived from a fix that arrived after its place in time
	// had been decided (see Tracker); a correction, not a state change.
	FlagLate = "late"
	// FlagInitial: the vehicle was inside when first seen, or when the
	// station appeared or moved over it; not an arrival (see InitialCause).
	FlagInitial = "initial"
	// FlagGap: the first decision after the vehicle was silent for longer
	// than the silence gap; GapS says for how long.
	FlagGap = "gap"
	// FlagStationChanged: the station changed during the visit, or its
	// change is what put the vehicle inside or outside.
	FlagStationChanged = "station_changed"
	// FlagStationDeleted: the visit ended because the station was deleted.
	FlagStationDeleted = "station_deleted"
)

// Causes of an initial entry.
const (
	CauseFirstSeen      = "vehicle_first_seen"
	CauseStationAdded   = "station_added"
	CauseStationChanged = "station_changed"
)

// Transition is a vehicle entering or leaving a station.
type Transition struct {
	Kind           Kind
	Vehicle        string
	StationID      string
	StationType    string
	StationVersion int64
	// VisitID is the same on a visit's entry and exit.
	VisitID string
	// At is when it happened: the time of the first fix of the confirmed
	// run inside (entry) or outside (exit), or an estimate for
	// interpolated transitions.
	At time.Time
	// Point is where: the fix at At, or an estimate.
	Point geo.Point
	Flags []string
	// InitialCause says why an initial entry is one.
	InitialCause string
	// EnteredAt and Dwell describe the visit an exit ends.
	EnteredAt time.Time
	Dwell     time.Duration
	// Gap is the silence before the fix that led to the transition, when
	// it exceeded the silence gap.
	Gap time.Duration
}

// HasFlag reports whether the transition carries flag.
func (t *Transition) HasFlag(flag string) bool {
	for _, f := range t.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// visitID derives a visit's id from what identifies it: the vehicle, the
// station and the time it began (and, for a late correction, that it is
// one).
func visitID(plate, station string, at time.Time, late bool) string {
	return visitUUID(plate, station, at, late).String()
}

// visitUUID is visitID as its 16 bytes, as a membership keeps it.
func visitUUID(plate, station string, at time.Time, late bool) uuid.UUID {
	kind := "visit"
	if late {
		kind = "late-visit"
	}
	return event.UUID(kind, plate, station, at.UTC().Format(time.RFC3339Nano))
}
