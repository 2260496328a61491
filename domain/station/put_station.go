package station

import "time"

// PutStation creates or replaces a station (PUT), subject to Condition.
type PutStation struct {
	// Station is the definition; it must have an id (see WithID).
	Station   *Station
	Condition Condition
	// Source is the event's source, e.g. /tms/api.
	Source string
	// At is the command's time.
	At time.Time
}

// StationID implements Command.
func (c PutStation) StationID() string { return c.Station.ID() }

// Decide implements Command: ErrPreconditionFailed when the condition does
// not hold.
func (c PutStation) Decide(cur Current) (Decision, error) {
	if err := c.Condition.check(c.Station.ID(), cur); err != nil {
		return Decision{}, err
	}
	return upsert(c.Station, cur, c.Source, c.At)
}
