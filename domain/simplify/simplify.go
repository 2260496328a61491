// Package simplify reduces a vehicle's track to at most a given number of
// points while keeping its shape, for maps and analysts that ask for a
// month or a year of one vehicle at once.
//
// It is Douglas-Peucker in its "largest error first" form: starting from
// the points that must stay, it keeps, one at a time, the point farthest
// from the line kept so far, until the points allowed are used up. The
// distance of the farthest point left out is then the tolerance: every
// fix lies within it of the returned line (the Hausdorff distance from the
// track to its simplification), so a caller asks for points and learns the
// tolerance, rather than guessing a tolerance and getting a surprise
// number of points. Distances are metres, on a local flat projection of
// each segment (exact enough for segments of up to a few hundred
// kilometres: the simplification of a vehicle's year spans a country).
//
// Some points are never dropped: the first and last fix, the start and end
// of every stop (the vehicle standing within StopRadiusM for at least
// StopMin) and the fixes on either side of every station entry and exit
// the caller names (Boundaries). Without them a stop on a straight road,
// or a visit, would vanish from the line.
//
// Fixes stream through a Simplifier one at a time, in time order, and its
// memory is bounded by Buffer points whatever the track's length: when
// the buffer fills, it is simplified to half its size in the same way,
// and the distance that costs is added to the tolerance reported (the
// errors of successive simplifications add up at most, by the triangle
// inequality). A month of 10 s fixes (268,000) fits in the default buffer
// and is simplified exactly once; a year of 1 s fixes (31.5 million)
// passes through in bounded memory.
//
// Well-kept Go libraries (github.com/paulmach/orb/simplify) simplify a
// line held in memory with a given threshold, on planar coordinates; none
// takes a number of points, points that must stay, or a stream.
package simplify

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// Point is a fix: its time in Unix microseconds and its place.
type Point struct {
	UnixMicro int64
	Lat, Lng  float64
}

// Kind says why a point was kept regardless of the tolerance; 0 is a
// point kept for the shape. A point may be kept for several reasons.
type Kind uint8

// The reasons a point is kept whatever the tolerance.
const (
	// End is the first or the last fix.
	End Kind = 1 << iota
	// StopStart and StopEnd are the first and last fix of a stop.
	StopStart
	StopEnd
	// Boundary is a fix next to a station entry or exit.
	Boundary
	// pending is the start of the run of fixes the vehicle is in now:
	// a stop's start if the run lasts.
	pending
)

// Config says how to simplify.
type Config struct {
	// MaxPoints is the most points the result may have (at least 2).
	MaxPoints int
	// Buffer is the most points held at once (at least 4 x MaxPoints).
	// Default 300,000: about 10 MB.
	Buffer int
	// StopRadiusM and StopMin define a stop: fixes that stay within
	// StopRadiusM of the first of them for at least StopMin. Defaults 50 m
	// and 3 minutes.
	StopRadiusM float64
	StopMin     time.Duration
	// Boundaries are the times (Unix microseconds) of the station entries
	// and exits to keep, in any order: for each, the fix at it, or the
	// fixes just before and just after it.
	Boundaries []int64
}

// DefaultBuffer is Config.Buffer's default.
const DefaultBuffer = 300_000

func (c *Config) setDefaults() {
	if c.Buffer == 0 {
		c.Buffer = max(DefaultBuffer, 4*c.MaxPoints)
	}
	if c.StopRadiusM == 0 {
		c.StopRadiusM = 50
	}
	if c.StopMin == 0 {
		c.StopMin = 3 * time.Minute
	}
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxPoints < 2 {
		errs = append(errs, fmt.Errorf("simplify: MaxPoints %d is less than 2", c.MaxPoints))
	}
	if c.Buffer < 4*c.MaxPoints {
		errs = append(errs, fmt.Errorf("simplify: Buffer %d is less than 4 x MaxPoints (%d)", c.Buffer, 4*c.MaxPoints))
	}
	if c.StopRadiusM < 0 || math.IsNaN(c.StopRadiusM) || c.StopMin < 0 {
		errs = append(errs, errors.New("simplify: StopRadiusM and StopMin must not be negative"))
	}
	return errors.Join(errs...)
}

// TooManyKeptError is returned when the points that must stay (ends,
// stops, station entries and exits) are more than MaxPoints.
type TooManyKeptError struct {
	// Kept is how many there were when the simplifier gave up (at least
	// MaxPoints+1; the scan stops there).
	Kept, MaxPoints int
}

func (e *TooManyKeptError) Error() string {
	return fmt.Sprintf("the track has more than %d stops, station entries and exits and ends to keep (%d so far)", e.MaxPoints, e.Kept)
}

// Kept is a point of the result.
type Kept struct {
	Point
	Kind Kind
}

// Result is a simplified track.
type Result struct {
	// Points are the points kept, in time order.
	Points []Kept
	// Fixes is how many fixes they stand for.
	Fixes int64
	// ToleranceM bounds the distance in metres of every fix from the line
	// through Points: 0 when every fix was kept.
	ToleranceM float64
	// Stops is how many stops were found (each kept by its start and
	// end); Boundaries how many station entries and exits fell within the
	// track.
	Stops, Boundaries int
}

// cand is a point held, with why it must stay.
type cand struct {
	Point
	kind Kind
}

// Simplifier simplifies one track fed to it in time order.
//
// Stops are found as stay points (Li et al., 2008) in a stream: the
// fixes that may still begin a stop (those since the oldest fix that all
// later ones are within StopRadiusM of, at most StopMin of them) stay in
// the buffer as pending; once they span StopMin, the first is a stop's
// start, and the stop lasts while fixes stay within StopRadiusM of it.
type Simplifier struct {
	cfg  Config
	buf  []cand
	tol  float64 // the tolerance spent by compactions
	n    int64
	kept int // points in buf that must stay (pending excluded)

	stopR2    float64
	inStop    bool
	stopStart Point
	// w is how many fixes before the newest may begin a stop: the last w
	// of buf before the newest, all pending.
	w     int
	stops int

	bounds []int64
	bi     int
	nb     int
}

// New validates cfg and returns a Simplifier.
func New(cfg Config) (*Simplifier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := slices.Clone(cfg.Boundaries)
	slices.Sort(b)
	return &Simplifier{cfg: cfg, buf: make([]cand, 0, min(cfg.Buffer, 4096)), stopR2: cfg.StopRadiusM * cfg.StopRadiusM,
		bounds: slices.Compact(b)}, nil
}

// mark adds why to the point at i.
func (s *Simplifier) mark(i int, why Kind) {
	c := &s.buf[i]
	if c.kind&^pending == 0 && why&^pending != 0 {
		s.kept++
	}
	c.kind |= why
}

// Add takes the next fix. Fixes must come in increasing time; a
// TooManyKeptError means the track cannot be simplified to MaxPoints,
// and the caller may stop feeding it.
func (s *Simplifier) Add(p Point) error {
	if len(s.buf) > 0 && p.UnixMicro <= s.buf[len(s.buf)-1].UnixMicro {
		return fmt.Errorf("simplify: fix at %d µs after one at %d µs: fixes must come in increasing time",
			p.UnixMicro, s.buf[len(s.buf)-1].UnixMicro)
	}
	s.n++
	s.buf = append(s.buf, cand{Point: p})
	if len(s.buf) == 1 {
		s.mark(0, End)
	}
	s.stop(p)
	s.boundaries(p)
	if len(s.buf) >= s.cfg.Buffer {
		s.compact()
	}
	return s.check()
}

// stop follows stops up to p, the newest fix (the last in buf).
func (s *Simplifier) stop(p Point) {
	last := len(s.buf) - 1
	if s.inStop {
		if dist2(s.stopStart, p) <= s.stopR2 {
			return
		}
		s.mark(last-1, StopEnd)
		s.inStop = false
	}
	// Drop the fixes that can no longer begin a stop: those p, or a fix
	// after them, is too far from.
	for s.w > 0 {
		first := last - s.w
		ok := true
		for i := first + 1; i <= last && ok; i++ {
			ok = dist2(s.buf[first].Point, s.buf[i].Point) <= s.stopR2
		}
		if ok {
			break
		}
		s.buf[first].kind &^= pending
		s.w--
	}
	if s.w >= s.cfg.Buffer/4 {
		// More fixes within StopMin than a quarter of the buffer (fixes
		// far denser than any receiver sends): the oldest may no longer
		// begin a stop, so that the buffer's bound holds.
		s.buf[last-s.w].kind &^= pending
		s.w--
	}
	s.buf[last].kind |= pending
	s.w++
	first := last - s.w + 1
	if time.Duration(p.UnixMicro-s.buf[first].UnixMicro)*time.Microsecond >= s.cfg.StopMin && first < last {
		s.mark(first, StopStart)
		s.stopStart = s.buf[first].Point
		s.inStop = true
		s.stops++
		for i := first; i <= last; i++ {
			s.buf[i].kind &^= pending
		}
		s.w = 0
	}
}

// boundaries marks the fixes next to the station entries and exits up to
// p, the newest fix (the last in buf).
func (s *Simplifier) boundaries(p Point) {
	last := len(s.buf) - 1
	for s.bi < len(s.bounds) && s.bounds[s.bi] <= p.UnixMicro {
		if last > 0 && s.bounds[s.bi] != p.UnixMicro && s.buf[last-1].UnixMicro < s.bounds[s.bi] {
			s.mark(last-1, Boundary)
		}
		if last > 0 || s.bounds[s.bi] == p.UnixMicro {
			s.nb++ // one before the first fix is outside the track
		}
		s.mark(last, Boundary)
		s.bi++
	}
}

func (s *Simplifier) check() error {
	if s.kept > s.cfg.MaxPoints {
		return &TooManyKeptError{Kept: s.kept, MaxPoints: s.cfg.MaxPoints}
	}
	return nil
}

// compact simplifies the buffer to half its size, keeping what must stay,
// the fixes that may begin a stop and the newest fix, which the next one
// joins.
func (s *Simplifier) compact() {
	keep, dev := reduce(s.buf, s.cfg.Buffer/2)
	s.tol += dev
	out := s.buf[:0]
	for i, c := range s.buf {
		if keep[i] {
			out = append(out, c)
		}
	}
	s.buf = out
}

// Result finishes the track and returns its simplification.
func (s *Simplifier) Result() (Result, error) {
	if len(s.buf) == 0 {
		return Result{Points: []Kept{}}, nil
	}
	last := len(s.buf) - 1
	if s.inStop {
		s.mark(last, StopEnd)
		s.inStop = false
	}
	for i := last - s.w + 1; i <= last; i++ {
		s.buf[i].kind &^= pending
	}
	s.w = 0
	s.mark(last, End)
	if err := s.check(); err != nil {
		return Result{}, err
	}
	keep, dev := reduce(s.buf, s.cfg.MaxPoints)
	r := Result{Fixes: s.n, ToleranceM: s.tol + dev, Stops: s.stops, Boundaries: s.nb}
	for i, c := range s.buf {
		if keep[i] {
			r.Points = append(r.Points, Kept{Point: c.Point, Kind: c.kind})
		}
	}
	return r, nil
}

// segment is a stretch of points between two kept ones, i and j, with
// the one farthest from the line i-j, k, at squared distance d2.
type segment struct {
	i, j, k int32
	d2      float64
}

type segments []segment

func (h segments) Len() int           { return len(h) }
func (h segments) Less(a, b int) bool { return h[a].d2 > h[b].d2 }
func (h segments) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *segments) Push(x any)        { *h = append(*h, x.(segment)) }
func (h *segments) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// reduce chooses at most target points of pts, largest error first: the
// first, the last and those that must stay, then one at a time the point
// farthest from the line through those chosen. It returns which are kept
// and the distance in metres of the farthest point left out. The caller
// makes sure that the points that must stay are at most target.
func reduce(pts []cand, target int) (keep []bool, dev float64) {
	n := len(pts)
	keep = make([]bool, n)
	count := 0
	for i, c := range pts {
		if c.kind != 0 || i == 0 || i == n-1 {
			keep[i] = true
			count++
		}
	}
	h := make(segments, 0, min(target, n))
	prev := 0
	for i := 1; i < n; i++ {
		if keep[i] {
			if i > prev+1 {
				h = append(h, farthest(pts, prev, i))
			}
			prev = i
		}
	}
	heap.Init(&h)
	for count < target && h.Len() > 0 && h[0].d2 > 0 {
		sg := heap.Pop(&h).(segment)
		keep[sg.k] = true
		count++
		if sg.k > sg.i+1 {
			heap.Push(&h, farthest(pts, int(sg.i), int(sg.k)))
		}
		if sg.j > sg.k+1 {
			heap.Push(&h, farthest(pts, int(sg.k), int(sg.j)))
		}
	}
	if h.Len() > 0 {
		dev = math.Sqrt(h[0].d2)
	}
	return keep, dev
}

// farthest finds the point of pts strictly between i and j farthest from
// the segment pts[i]-pts[j].
func farthest(pts []cand, i, j int) segment {
	a, b := pts[i].Point, pts[j].Point
	kx := metresPerDegreeLng((a.Lat + b.Lat) / 2)
	bx, by := dLng(a.Lng, b.Lng)*kx, (b.Lat-a.Lat)*geo.MetresPerDegreeLat
	len2 := bx*bx + by*by
	best := segment{i: int32(i), j: int32(j), k: int32(i + 1), d2: -1}
	for k := i + 1; k < j; k++ {
		p := pts[k].Point
		px, py := dLng(a.Lng, p.Lng)*kx, (p.Lat-a.Lat)*geo.MetresPerDegreeLat
		t := 0.0
		if len2 > 0 {
			t = min(max((px*bx+py*by)/len2, 0), 1)
		}
		dx, dy := px-t*bx, py-t*by
		if d2 := dx*dx + dy*dy; d2 > best.d2 {
			best.k, best.d2 = int32(k), d2
		}
	}
	return best
}

// dist2 is the squared distance in metres between a and b, on the flat
// projection at their mean latitude.
func dist2(a, b Point) float64 {
	dx := dLng(a.Lng, b.Lng) * metresPerDegreeLng((a.Lat+b.Lat)/2)
	dy := (b.Lat - a.Lat) * geo.MetresPerDegreeLat
	return dx*dx + dy*dy
}

// dLng is b-a in degrees of longitude, the short way round.
func dLng(a, b float64) float64 {
	d := b - a
	switch {
	case d > 180:
		d -= 360
	case d < -180:
		d += 360
	}
	return d
}

func metresPerDegreeLng(lat float64) float64 {
	return geo.MetresPerDegreeLat * math.Cos(lat*math.Pi/180)
}
