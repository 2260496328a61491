package station

import (
	"fmt"
	"time"
)

// DeleteStation deletes a station (DELETE), subject to Condition. The
// deletion is an event with the next version, so that a station created
// again later continues from there.
type DeleteStation struct {
	ID        string
	Condition Condition
	// Source is the event's source, e.g. /tms/api.
	Source string
	// At is the command's time: visits in progress end at the vehicles'
	// next fixes from then on.
	At time.Time
}

// StationID implements Command.
func (c DeleteStation) StationID() string { return c.ID }

// Decide implements Command: ErrNotFound when the station does not exist
// (whatever the condition: RFC 9110 §13.2.1 has a server ignore
// preconditions when the request would fail without them), else
// ErrPreconditionFailed when the condition does not hold.
func (c DeleteStation) Decide(cur Current) (Decision, error) {
	if !cur.Exists() {
		return Decision{}, fmt.Errorf("%w: %s", ErrNotFound, c.ID)
	}
	if err := c.Condition.check(c.ID, cur); err != nil {
		return Decision{}, err
	}
	e, err := DeletedEvent(c.Source, c.ID, cur.Version+1, c.At)
	if err != nil {
		return Decision{}, err
	}
	return Decision{Event: e, Version: cur.Version + 1}, nil
}
