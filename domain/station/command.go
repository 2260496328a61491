package station

import (
	"fmt"
	"slices"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

// Current is a station's standing when a command is decided: the version
// of its last event (0 when it never had one) and whether that event
// deleted it. The caller reads it from a read model that has caught up
// with tms.stations, and holds every other command on the station off
// until its own event is appended, or two commands would both claim the
// next version.
type Current struct {
	Version int64
	Deleted bool
}

// Exists reports whether the station exists: it has a version that is not
// a deletion.
func (c Current) Exists() bool { return c.Version > 0 && !c.Deleted }

// Condition is a command's precondition, from the HTTP request's If-Match
// and If-None-Match headers (RFC 9110 §13.1), where a station's ETag is
// its version.
type Condition struct {
	// IfMatch, when not nil, lists the versions the client accepts: the
	// command applies only if the station exists at one of them. An empty
	// non-nil list (only weak or foreign ETags were sent) matches nothing.
	IfMatch []int64
	// IfMatchAny (If-Match: *): the station must exist.
	IfMatchAny bool
	// IfNoneMatchAny (If-None-Match: *): the station must not exist; a
	// create-only put.
	IfNoneMatchAny bool
}

// check evaluates c against cur, If-Match first as RFC 9110 §13.2.2 says.
func (c Condition) check(id string, cur Current) error {
	switch {
	case c.IfMatchAny && !cur.Exists():
		return fmt.Errorf("%w: If-Match: * but station %s does not exist", ErrPreconditionFailed, id)
	case c.IfMatch != nil && !cur.Exists():
		return fmt.Errorf("%w: If-Match names a version but station %s does not exist", ErrPreconditionFailed, id)
	case c.IfMatch != nil && !slices.Contains(c.IfMatch, cur.Version):
		return fmt.Errorf("%w: station %s is at version %d (ETag \"%d\"), not the one If-Match names", ErrPreconditionFailed, id, cur.Version, cur.Version)
	case c.IfNoneMatchAny && cur.Exists():
		return fmt.Errorf("%w: If-None-Match: * but station %s exists (version %d)", ErrPreconditionFailed, id, cur.Version)
	}
	return nil
}

// Decision is a decided command: the event to append and what it does.
type Decision struct {
	Event event.Envelope
	// Version is the station's version once the event is applied.
	Version int64
	// Created: the station did not exist before (it is new, or it is
	// created again after a deletion).
	Created bool
}

// Command is a decided-against-the-current-version change to one station.
type Command interface {
	// StationID is the station the command changes.
	StationID() string
	// Decide returns the event the command appends given the station's
	// standing, or why it does not apply (an error wrapping ErrExists,
	// ErrNotFound or ErrPreconditionFailed).
	Decide(cur Current) (Decision, error)
}

// The commands decide from what they are given only: At is the command's
// time, taken by the caller (when the API accepted it), never the clock's.
var (
	_ Command = CreateStation{}
	_ Command = PutStation{}
	_ Command = DeleteStation{}
)

// upsert decides an upsert of s over cur.
func upsert(s *Station, cur Current, source string, at time.Time) (Decision, error) {
	e, err := s.Upserted(source, cur.Version+1, at)
	if err != nil {
		return Decision{}, err
	}
	return Decision{Event: e, Version: cur.Version + 1, Created: !cur.Exists()}, nil
}
