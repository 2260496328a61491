package trip

import (
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/track"
)

// Kind says whether a segment is a trip or a stop.
type Kind string

// The kinds of segment.
const (
	KindTrip Kind = "trip"
	KindStop Kind = "stop"
)

// Flags a segment may carry.
const (
	// FlagGap: a silence longer than Rules.Gap ended the segment (a trip
	// ends at its last fix before it) or lies within it (a stop).
	FlagGap = "gap"
	// FlagPartial: the segment began at the vehicle's first fix, or at its
	// first after a silence, so it may have begun before.
	FlagPartial = "partial"
)

// Place is where a vehicle was at a moment: a fix's time and position.
type Place struct {
	Time  time.Time
	Point geo.Point
}

// Stats are what a segment holds, counted over its fixes after its start
// up to its end (the fix it starts at belongs to the segment before).
type Stats struct {
	// Fixes is how many fixes it holds, noise included.
	Fixes int
	// DistanceM is the distance driven between its start and its end,
	// with the noise taken out (track.Filter).
	DistanceM float64
	// MaxSpeedKmh is the highest speed reported by a fix it holds (jumps
	// aside).
	MaxSpeedKmh float64
	// MovingS and IdleS split its duration: between two fixes the vehicle
	// moved when the later one reports more than the parked speed or is
	// that fast from the fix kept before it; otherwise it stood. Silences
	// longer than the gap count as neither.
	MovingS, IdleS float64
	// Noise is what the filter dropped of its fixes.
	Noise track.Noise
}

// Segment is a trip or a stop. An open one is still going on: its end is
// the vehicle's last fix so far, and it may yet change.
type Segment struct {
	Kind Kind
	// Start and End: for a trip, the fix at which the vehicle last stood
	// before it and the one at which it first stood after it (or its last
	// before a silence); for a stop, the trip's end and the next trip's
	// start.
	Start, End Place
	Open       bool
	Stats      Stats
	Flags      []string
}

// Duration is the time from start to end.
func (s *Segment) Duration() time.Duration { return s.End.Time.Sub(s.Start.Time) }

// AvgSpeedKmh is a trip's distance over its moving time (0 when it never
// moved): the speed it travelled at, its halts in traffic left out.
func (s *Segment) AvgSpeedKmh() float64 {
	if s.Stats.MovingS <= 0 {
		return 0
	}
	return s.Stats.DistanceM / s.Stats.MovingS * 3.6
}
