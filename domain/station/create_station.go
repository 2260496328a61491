package station

import (
	"fmt"
	"time"
)

// CreateStation creates a station that does not exist (POST). A station
// that was deleted may be created again; it continues its versions.
type CreateStation struct {
	// Station is the definition; it must have an id (see WithID).
	Station *Station
	// Source is the event's source, e.g. /tms/api.
	Source string
	// At is the command's time.
	At time.Time
}

// StationID implements Command.
func (c CreateStation) StationID() string { return c.Station.ID() }

// Decide implements Command: ErrExists when the station exists.
func (c CreateStation) Decide(cur Current) (Decision, error) {
	if cur.Exists() {
		return Decision{}, fmt.Errorf("%w: station %s exists (version %d); replace it with PUT", ErrExists, c.Station.ID(), cur.Version)
	}
	return upsert(c.Station, cur, c.Source, c.At)
}
