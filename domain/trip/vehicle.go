package trip

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/track"
)

// ErrNotInOrder is returned for a fix that is not after the newest fix a
// Vehicle has taken: late fixes are applied by going back to a snapshot
// (see the package documentation), never by Add.
var ErrNotInOrder = errors.New("trip: fix not after the newest one")

// Fix is one fix of the vehicle.
type Fix = track.Fix

// Vehicle is one vehicle's trip state: what it has made of its fixes so
// far. The zero value is a vehicle with no fixes. It is stored and
// restored with MarshalBinary and UnmarshalBinary, exactly: a restored
// Vehicle goes on as the original would.
type Vehicle struct {
	s state
}

// mode is what the vehicle is doing.
type mode string

const (
	// none: no fix yet, or the last one after a silence had no position.
	none mode = ""
	// stopped: standing within the radius of the stop's start.
	stopped mode = "stopped"
	// moving: a trip since Start (or, until Left, only perhaps one: the
	// first fixes after the vehicle appeared).
	moving mode = "moving"
)

// totals are running sums over every fix the vehicle has taken; a
// segment's stats are the difference of the totals at its two ends.
type totals struct {
	Fixes    int
	Distance float64
	Moving   float64
	Idle     float64
	Used     int
	Dropped  int
	DroppedM float64
}

// mark is a fix with a position, and the totals once it was taken.
type mark struct {
	Time  time.Time
	Lat   float64
	Lng   float64
	Speed float64
	Tot   totals
	// Max is the highest speed since the start of the trip (in motion) or
	// since the last standing fix (stopped), this fix included.
	Max float64
}

func (m *mark) point() geo.Point { return geo.Point{Lat: m.Lat, Lng: m.Lng} }
func (m *mark) place() Place     { return Place{Time: m.Time, Point: m.point()} }

// state is the Vehicle's state (encoding.go stores it).
type state struct {
	// The filter: the last fix it kept, and a suspected jump waiting for
	// the fix after it.
	LastKept *track.Fix
	Suspect  *Fix
	// Newest is the newest fix taken (the suspect included).
	Newest time.Time
	// Prev is the time of the last fix decided.
	Prev time.Time
	Tot  totals
	// LastPos is the last fix decided that had a position (not a jump).
	LastPos *mark

	Mode mode
	// Start is the stop's start (stopped) or the trip's (moving).
	Start *mark
	// Flags are the open segment's.
	Flags []string
	// Left: the trip has left the radius of its start (moving).
	Left bool
	// Cand is the first fix of the current stay within one radius
	// (moving): where the vehicle may be stopping.
	Cand *mark
	// Stand is the first standing fix of that stay (moving).
	Stand *mark
	// Last is the last standing fix: of the stay (moving), or of the stop
	// (stopped), where the next trip would start.
	Last *mark
	// Within is the last fix within the stop's radius (stopped).
	Within *mark
	// Out are the fixes in a row outside the radius of Start (stopped) or
	// Cand (moving), fewer than MoveFixes.
	Out []mark
	// TripMax is the highest speed since the trip's start (moving);
	// TailMax since Last.
	TripMax float64
	TailMax float64
}

// Newest is the time of the newest fix taken; zero before the first.
func (v *Vehicle) Newest() time.Time { return v.s.Newest }

// Empty reports whether the vehicle has taken no fix.
func (v *Vehicle) Empty() bool { return v.s.Newest.IsZero() }

// Add takes the vehicle's next fix, which must be after every fix it has
// taken (ErrNotInOrder otherwise), and returns the segments it closed, in
// time order. A suspected jump is held until the fix after it says
// whether it was one, so a fix's effect may show only with the next.
func (v *Vehicle) Add(r Rules, f Fix) ([]Segment, error) {
	s := &v.s
	if !s.Newest.IsZero() && !f.Time.After(s.Newest) {
		return nil, fmt.Errorf("%w: %s, newest %s", ErrNotInOrder, f.Time.Format(time.RFC3339Nano), s.Newest.Format(time.RFC3339Nano))
	}
	s.Newest = f.Time
	var out []Segment
	if s.Suspect != nil {
		sus := *s.Suspect
		s.Suspect = nil
		verdict := r.Filter.Judge(*s.LastKept, sus, &f)
		out = v.decide(r, sus, verdict, r.Filter.Dropped(*s.LastKept, sus, &f, verdict), out)
	}
	switch {
	case s.LastKept == nil:
		out = v.decide(r, f, track.Kept, 0, out)
	case r.Filter.Suspect(*s.LastKept, f):
		s.Suspect = &f
	default:
		verdict := r.Filter.Judge(*s.LastKept, f, nil)
		out = v.decide(r, f, verdict, r.Filter.Dropped(*s.LastKept, f, nil, verdict), out)
	}
	return out, nil
}

// Open returns the segment in progress, if there is one: the stop the
// vehicle stands at, or the trip it is on, up to its last fix decided.
func (v *Vehicle) Open() (Segment, bool) {
	s := &v.s
	if s.Start == nil || s.LastPos == nil || (s.Mode == moving && !s.Left) {
		return Segment{}, false
	}
	end := *s.LastPos
	end.Time, end.Tot = s.Prev, s.Tot
	seg := segment(s.Mode.kind(), s.Start, &end, s.Flags)
	seg.Open = true
	if s.Mode == moving {
		seg.Stats.MaxSpeedKmh = s.TripMax
	}
	return seg, true
}

// OpenSince is the start of the earliest segment that is not closed yet
// (the open one, or the trip that a stay in progress may end): every
// segment the vehicle closes from now on starts there or later. Zero for
// a vehicle with no fix yet; its newest fix for one between segments
// (after a silence, until a fix with a position).
func (v *Vehicle) OpenSince() time.Time {
	if v.s.Start == nil {
		return v.s.Newest
	}
	return v.s.Start.Time
}

func (m mode) kind() Kind {
	if m == stopped {
		return KindStop
	}
	return KindTrip
}

// segment is the segment from a to b.
func segment(k Kind, a, b *mark, flags []string) Segment {
	d := b.Tot
	d.sub(a.Tot)
	seg := Segment{Kind: k, Start: a.place(), End: b.place(), Flags: slices.Clone(flags), Stats: Stats{
		Fixes: d.Fixes, DistanceM: d.Distance, MovingS: d.Moving, IdleS: d.Idle,
		Noise: track.Noise{FixesUsed: d.Used, FixesDropped: d.Dropped, DistanceDroppedM: d.DroppedM},
	}}
	if k == KindTrip {
		seg.Stats.MaxSpeedKmh = b.Max
	}
	return seg
}

func (t *totals) sub(o totals) {
	t.Fixes -= o.Fixes
	t.Distance -= o.Distance
	t.Moving -= o.Moving
	t.Idle -= o.Idle
	t.Used -= o.Used
	t.Dropped -= o.Dropped
	t.DroppedM -= o.DroppedM
}

// decide applies a fix the filter has judged.
func (v *Vehicle) decide(r Rules, f Fix, verdict track.Verdict, droppedM float64, out []Segment) []Segment {
	s := &v.s
	d := 0.0
	if verdict == track.Kept {
		if s.LastKept != nil {
			d = geo.Haversine(s.LastKept.Point, f.Point)
		}
		kept := f
		s.LastKept = &kept
	}
	var dt float64
	if !s.Prev.IsZero() {
		dt = f.Time.Sub(s.Prev).Seconds()
	}
	var m *mark
	if verdict != track.Jump {
		m = &mark{Time: f.Time, Lat: f.Point.Lat, Lng: f.Point.Lng, Speed: f.SpeedKmh}
	}
	if dt > r.Gap.Seconds() {
		out = v.gap(r, m, out)
	}

	t := &s.Tot
	t.Fixes++
	t.Distance += d
	if verdict == track.Kept {
		t.Used++
	} else {
		t.Dropped++
		t.DroppedM += droppedM
	}
	if dt > 0 && dt <= r.Gap.Seconds() {
		parked := r.Filter.ParkedSpeedKmh
		if f.SpeedKmh > parked || (verdict == track.Kept && d/dt*3.6 > parked) {
			t.Moving += dt
		} else {
			t.Idle += dt
		}
	}
	s.Prev = f.Time
	if m == nil {
		return out // a jump: only its time counts
	}
	m.Tot = s.Tot
	s.LastPos = m
	switch s.Mode {
	case none:
		v.restart(r, m, []string{FlagPartial})
	case stopped:
		out = v.stopped(r, m, out)
	case moving:
		out = v.moving(r, m, out)
	}
	return out
}

func (r Rules) standing(m *mark) bool { return m.Speed <= r.Filter.ParkedSpeedKmh }

func (r Rules) within(a, b *mark) bool { return geo.Haversine(a.point(), b.point()) <= r.RadiusM }

// restart begins afresh at m: in motion, but not a trip until the vehicle
// leaves the radius of m, and a stop from m if it stays.
func (v *Vehicle) restart(r Rules, m *mark, flags []string) {
	s := &v.s
	m.Max = 0
	*s = state{LastKept: s.LastKept, Suspect: s.Suspect, Newest: s.Newest, Prev: s.Prev, Tot: s.Tot, LastPos: m,
		Mode: moving, Start: m, Cand: m, Flags: flags}
	if r.standing(m) {
		s.Stand, s.Last = m, m
	}
}

// moving applies a fix with a position while on a trip (or perhaps on
// one, after a restart).
func (v *Vehicle) moving(r Rules, m *mark, out []Segment) []Segment {
	s := &v.s
	s.TripMax = math.Max(s.TripMax, m.Speed)
	m.Max = s.TripMax
	if r.within(s.Cand, m) {
		s.Out = nil
		v.stay(r, m)
	} else {
		s.Out = append(s.Out, *m)
		s.TailMax = math.Max(s.TailMax, m.Speed)
		if len(s.Out) < r.MoveFixes {
			return out
		}
		// MoveFixes in a row outside: the vehicle has left the stay.
		s.Left = true
		v.newStay(r, s.Out)
		if len(s.Out) > 0 {
			return out
		}
	}
	if m.Time.Sub(s.Cand.Time) >= r.Parking {
		out = v.arrive(out)
	}
	return out
}

// newStay begins a stay at the first of outs (fixes in a row, in time
// order) and applies the others to it.
func (v *Vehicle) newStay(r Rules, outs []mark) {
	s := &v.s
	first := outs[0]
	s.Cand, s.Stand, s.Last, s.Out, s.TailMax = &first, nil, nil, nil, 0
	v.stay(r, s.Cand)
	for _, o := range outs[1:] {
		if !r.within(s.Cand, &o) {
			s.Out = append(s.Out, o)
			s.TailMax = math.Max(s.TailMax, o.Speed)
			continue
		}
		s.Out = nil
		v.stay(r, &o)
	}
}

// stay applies a fix within the radius of the current stay (moving).
func (v *Vehicle) stay(r Rules, m *mark) {
	s := &v.s
	if r.standing(m) {
		if s.Stand == nil {
			s.Stand = m
		}
		s.Last, s.TailMax = m, 0
		return
	}
	s.TailMax = math.Max(s.TailMax, m.Speed)
}

// arrive ends the trip: the vehicle has stayed long enough. The trip ends
// where the stay began (at its first standing fix); a vehicle that never
// left the place it appeared at has been at a stop since then.
func (v *Vehicle) arrive(out []Segment) []Segment {
	s := &v.s
	end := s.Stand
	if end == nil {
		end = s.Cand
	}
	start, flags := end, []string(nil)
	if s.Left {
		out = append(out, segment(KindTrip, s.Start, end, s.Flags))
	} else {
		start, flags = s.Start, s.Flags
	}
	s.Mode, s.Start, s.Flags, s.Left = stopped, start, flags, false
	s.Within = s.LastPos
	s.Cand, s.Stand, s.Out, s.TripMax = nil, nil, nil, 0
	return out
}

// stopped applies a fix with a position while the vehicle stands.
func (v *Vehicle) stopped(r Rules, m *mark, out []Segment) []Segment {
	s := &v.s
	if r.within(s.Start, m) {
		s.Out, s.Within = nil, m
		if r.standing(m) {
			s.Last, s.TailMax = m, 0
		} else {
			s.TailMax = math.Max(s.TailMax, m.Speed)
		}
		m.Max = s.TailMax
		return out
	}
	s.TailMax = math.Max(s.TailMax, m.Speed)
	m.Max = s.TailMax
	s.Out = append(s.Out, *m)
	if len(s.Out) < r.MoveFixes {
		return out
	}
	// Departed: the stop ends at its last standing fix, where the trip
	// starts. Each fix since carries the highest speed since then (Max),
	// so the fixes outside go on as the trip's first.
	dep := s.departure()
	out = append(out, segment(KindStop, s.Start, dep, s.Flags))
	outs := s.Out
	s.Mode, s.Start, s.Flags, s.Left = moving, dep, nil, true
	s.Within = nil
	s.TripMax = 0
	for _, o := range outs {
		s.TripMax = math.Max(s.TripMax, o.Max)
	}
	v.newStay(r, outs)
	if len(s.Out) == 0 && m.Time.Sub(s.Cand.Time) >= r.Parking {
		out = v.arrive(out) // sparse fixes: it stood at the next place already
	}
	return out
}

// departure is where a stop ends: its last standing fix, else its last
// fix within the radius.
func (s *state) departure() *mark {
	switch {
	case s.Last != nil:
		return s.Last
	case s.Within != nil:
		return s.Within
	}
	return s.Start
}

// gap ends what a silence longer than Rules.Gap ends, before m (nil for a
// fix without a position) is applied: either the segment goes on across
// the silence, or the vehicle starts afresh at m.
func (v *Vehicle) gap(r Rules, m *mark, out []Segment) []Segment {
	s := &v.s
	switch s.Mode {
	case stopped:
		if m != nil && r.within(s.Start, m) {
			s.Flags = addFlag(s.Flags, FlagGap)
			return out // parked through the silence
		}
	case moving:
		switch {
		case m != nil && r.within(s.Cand, m):
			// It stayed through the silence: a stop, and a long one.
			out = v.arrive(out)
			s.Flags = addFlag(s.Flags, FlagGap)
			return out
		case s.Stand != nil:
			// It had stopped when it fell silent, and reappears elsewhere:
			// the trip ended there, and so did the stop, at its last fix.
			out = v.arrive(out)
		case s.Left:
			out = append(out, segment(KindTrip, s.Start, s.LastPos, addFlag(s.Flags, FlagGap)))
		}
	}
	if s.Mode == stopped {
		out = append(out, segment(KindStop, s.Start, s.departure(), addFlag(s.Flags, FlagGap)))
	}
	// What follows starts afresh at the next fix with a position.
	*s = state{LastKept: s.LastKept, Suspect: s.Suspect, Newest: s.Newest, Prev: s.Prev, Tot: s.Tot, LastPos: s.LastPos}
	return out
}

func addFlag(flags []string, f string) []string {
	if slices.Contains(flags, f) {
		return flags
	}
	return append(slices.Clone(flags), f)
}
