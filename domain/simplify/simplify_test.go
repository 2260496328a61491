package simplify

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

const second = int64(time.Second / time.Microsecond)

// drive is a test track: a vehicle driving with turns, standing still
// (with GPS drift) now and then. stopsAt are the indexes of the first and
// last fix of each stop.
type drive struct {
	pts     []Point
	stopsAt [][2]int
}

// newDrive makes n fixes every dt seconds from t0, with a stop of
// stopFixes fixes every stopEvery fixes.
func newDrive(rng *rand.Rand, n int, dt int64, stopEvery, stopFixes int) drive {
	var d drive
	p := geo.Point{Lat: 31.2, Lng: 121.4}
	heading, speed := rng.Float64()*2*math.Pi, 12.0 // m/s
	t := int64(1_770_000_000) * second
	for i := 0; i < n; i++ {
		if stopEvery > 0 && i > 0 && i%stopEvery == 0 && i+stopFixes < n {
			at := p
			d.stopsAt = append(d.stopsAt, [2]int{i, i + stopFixes - 1})
			for range stopFixes {
				d.pts = append(d.pts, Point{UnixMicro: t, Lat: at.Lat + rng.NormFloat64()*3/geo.MetresPerDegreeLat,
					Lng: at.Lng + rng.NormFloat64()*3/metresPerDegreeLng(at.Lat)})
				t += dt * second
			}
			i += stopFixes - 1
			continue
		}
		d.pts = append(d.pts, Point{UnixMicro: t, Lat: p.Lat, Lng: p.Lng})
		t += dt * second
		if rng.Float64() < 0.05 {
			heading += rng.NormFloat64()
		}
		heading += rng.NormFloat64() * 0.02
		step := speed * float64(dt) * (0.7 + 0.6*rng.Float64())
		p.Lat += step * math.Cos(heading) / geo.MetresPerDegreeLat
		p.Lng += step * math.Sin(heading) / metresPerDegreeLng(p.Lat)
	}
	return d
}

func run(t *testing.T, cfg Config, pts []Point) Result {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pts {
		if err := s.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// distanceToLine is the distance in metres of p from the polyline, as
// the package defines it: each segment on the flat projection at its
// mid-latitude, with the segment's first point as origin.
func distanceToLine(p Point, line []Kept) float64 {
	best := math.Inf(1)
	for i := 0; i+1 < len(line); i++ {
		a, b := line[i].Point, line[i+1].Point
		kx, ky := geo.MetresPerDegreeLat*math.Cos((a.Lat+b.Lat)/2*math.Pi/180), geo.MetresPerDegreeLat
		bx, by := (b.Lng-a.Lng)*kx, (b.Lat-a.Lat)*ky
		px, py := (p.Lng-a.Lng)*kx, (p.Lat-a.Lat)*ky
		t := 0.0
		if l2 := bx*bx + by*by; l2 > 0 {
			t = math.Min(math.Max((px*bx+py*by)/l2, 0), 1)
		}
		best = math.Min(best, math.Hypot(px-t*bx, py-t*by))
	}
	if len(line) == 1 {
		best = geo.Haversine(geo.Point{Lat: p.Lat, Lng: p.Lng}, geo.Point{Lat: line[0].Lat, Lng: line[0].Lng})
	}
	return best
}

// hausdorff is the largest distance of a fix from the simplified line.
func hausdorff(pts []Point, line []Kept) float64 {
	worst := 0.0
	for _, p := range pts {
		worst = max(worst, distanceToLine(p, line))
	}
	return worst
}

func checkShape(t *testing.T, pts []Point, r Result, maxPoints int) {
	t.Helper()
	if len(r.Points) > maxPoints {
		t.Errorf("%d points, more than MaxPoints %d", len(r.Points), maxPoints)
	}
	if r.Fixes != int64(len(pts)) {
		t.Errorf("stands for %d fixes, want %d", r.Fixes, len(pts))
	}
	if r.Points[0].Point != pts[0] || r.Points[len(r.Points)-1].Point != pts[len(pts)-1] {
		t.Errorf("the first and last fix must be kept")
	}
	if !slices.IsSortedFunc(r.Points, func(a, b Kept) int { return int(a.UnixMicro - b.UnixMicro) }) {
		t.Errorf("points out of time order")
	}
	// Every point kept is a fix of the track.
	for _, k := range r.Points {
		if _, found := slices.BinarySearchFunc(pts, k.UnixMicro, func(p Point, at int64) int { return int(p.UnixMicro - at) }); !found {
			t.Fatalf("point at %d is no fix of the track", k.UnixMicro)
		}
	}
	if h := hausdorff(pts, r.Points); h > r.ToleranceM*(1+1e-9)+1e-9 {
		t.Errorf("a fix lies %.3f m from the simplified line; the tolerance reported is %.3f m", h, r.ToleranceM)
	}
}

func TestSimplifiedTrackStaysWithinItsTolerance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                         string
		fixes, maxPoints             int
		dt                           int64
		buffer, stopEvery, stopFixes int
	}{
		{"a day of 10 s fixes to 500 points", 8640, 500, 10, 0, 700, 60},
		{"a week of 60 s fixes to 2,000", 10080, 2000, 60, 0, 300, 10},
		{"straight-ish, few points", 3000, 2, 1, 0, 0, 0},
		{"compacted many times: buffer of 1,000 for 50,000 fixes", 50_000, 100, 1, 1000, 2000, 200},
		{"compacted with every stop kept", 20_000, 300, 5, 1200, 500, 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDrive(rand.New(rand.NewPCG(1, uint64(tt.fixes))), tt.fixes, tt.dt, tt.stopEvery, tt.stopFixes)
			r := run(t, Config{MaxPoints: tt.maxPoints, Buffer: tt.buffer}, d.pts)
			checkShape(t, d.pts, r, tt.maxPoints)
			if r.ToleranceM <= 0 {
				t.Errorf("tolerance %v for %d fixes in %d points", r.ToleranceM, len(d.pts), len(r.Points))
			}
			if r.Stops != len(d.stopsAt) {
				t.Errorf("%d stops found, the track has %d", r.Stops, len(d.stopsAt))
			}
		})
	}
}

// TestTheToleranceIsTheSmallestGreedyOne checks that the points allowed
// are used: with more points the tolerance does not grow, and a track of
// no more fixes than points comes back whole, at tolerance 0.
func TestTheToleranceIsTheSmallestGreedyOne(t *testing.T) {
	t.Parallel()
	d := newDrive(rand.New(rand.NewPCG(7, 7)), 5000, 10, 0, 0)
	last := math.Inf(1)
	for _, n := range []int{10, 50, 200, 1000, 4999} {
		r := run(t, Config{MaxPoints: n}, d.pts)
		if len(r.Points) != n {
			t.Errorf("MaxPoints %d: %d points; the budget should be used", n, len(r.Points))
		}
		if r.ToleranceM > last {
			t.Errorf("MaxPoints %d: tolerance %.2f m, above %.2f m with fewer points", n, r.ToleranceM, last)
		}
		last = r.ToleranceM
	}
	r := run(t, Config{MaxPoints: 5000}, d.pts)
	if len(r.Points) != 5000 || r.ToleranceM != 0 {
		t.Errorf("5000 fixes at MaxPoints 5000: %d points, tolerance %v; want all, 0", len(r.Points), r.ToleranceM)
	}
}

func TestStopsAreKept(t *testing.T) {
	t.Parallel()
	// 3,000 fixes 10 s apart; a stop of 60 fixes (10 minutes) every 400.
	d := newDrive(rand.New(rand.NewPCG(3, 4)), 3000, 10, 400, 60)
	r := run(t, Config{MaxPoints: 40}, d.pts)
	checkShape(t, d.pts, r, 40)
	kinds := map[int64]Kind{}
	for _, k := range r.Points {
		kinds[k.UnixMicro] = k.Kind
	}
	if len(d.stopsAt) != 7 || r.Stops != 7 {
		t.Fatalf("the track has %d stops, the simplifier found %d; want 7", len(d.stopsAt), r.Stops)
	}
	for _, s := range d.stopsAt {
		// The stop lasts as long as the fixes stay within StopRadiusM of
		// its first: here, the fix it drives off from too.
		end := s[1]
		for end+1 < len(d.pts) && geo.Haversine(geo.Point{Lat: d.pts[s[0]].Lat, Lng: d.pts[s[0]].Lng},
			geo.Point{Lat: d.pts[end+1].Lat, Lng: d.pts[end+1].Lng}) <= 50 {
			end++
		}
		first, last := d.pts[s[0]].UnixMicro, d.pts[end].UnixMicro
		if kinds[first]&StopStart == 0 || kinds[last]&StopEnd == 0 {
			t.Errorf("stop of fixes %d-%d: its first fix is kept as %v, its last as %v", s[0], s[1], kinds[first], kinds[last])
		}
	}
}

func TestAShortHaltIsNoStop(t *testing.T) {
	t.Parallel()
	// 2 minutes standing (13 fixes 10 s apart) is less than StopMin.
	d := newDrive(rand.New(rand.NewPCG(5, 6)), 600, 10, 200, 13)
	r := run(t, Config{MaxPoints: 20}, d.pts)
	if r.Stops != 0 {
		t.Errorf("%d stops in a track whose halts last 2 minutes", r.Stops)
	}
	for _, k := range r.Points {
		if k.Kind&(StopStart|StopEnd) != 0 {
			t.Errorf("point at %d kept as %v", k.UnixMicro, k.Kind)
		}
	}
}

func TestStationEntriesAndExitsAreKept(t *testing.T) {
	t.Parallel()
	d := newDrive(rand.New(rand.NewPCG(8, 9)), 5000, 10, 0, 0)
	pts := d.pts
	onFix := pts[1234].UnixMicro              // an entry at a fix
	between := pts[3000].UnixMicro + 4*second // an exit between two fixes
	before := pts[0].UnixMicro - second       // outside the track
	after := pts[len(pts)-1].UnixMicro + 1
	r := run(t, Config{MaxPoints: 12, Boundaries: []int64{between, onFix, before, after}}, pts)
	checkShape(t, pts, r, 12)
	want := []int64{pts[1234].UnixMicro, pts[3000].UnixMicro, pts[3001].UnixMicro}
	for _, w := range want {
		i := slices.IndexFunc(r.Points, func(k Kept) bool { return k.UnixMicro == w })
		if i < 0 || r.Points[i].Kind&Boundary == 0 {
			t.Errorf("the fix at %d next to a station entry or exit is not kept as one", w)
		}
	}
	if r.Boundaries != 2 {
		t.Errorf("%d entries and exits within the track, want 2", r.Boundaries)
	}
}

func TestTooManyStopsForThePointsAllowed(t *testing.T) {
	t.Parallel()
	d := newDrive(rand.New(rand.NewPCG(10, 11)), 4000, 10, 100, 30)
	s, err := New(Config{MaxPoints: 20})
	if err != nil {
		t.Fatal(err)
	}
	var tooMany *TooManyKeptError
	for _, p := range d.pts {
		if err = s.Add(p); err != nil {
			break
		}
	}
	if err == nil {
		_, err = s.Result()
	}
	if !errors.As(err, &tooMany) || tooMany.MaxPoints != 20 || tooMany.Kept != 21 {
		t.Errorf("err = %v, want a TooManyKeptError at 21 of 20", err)
	}
}

func TestTheBufferBoundsMemory(t *testing.T) {
	t.Parallel()
	d := newDrive(rand.New(rand.NewPCG(12, 13)), 100_000, 1, 5000, 200)
	s, err := New(Config{MaxPoints: 50, Buffer: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.pts {
		if err := s.Add(p); err != nil {
			t.Fatal(err)
		}
		if len(s.buf) > 1000 || cap(s.buf) > 4096 {
			t.Fatalf("%d points held (capacity %d), more than the buffer of 1000", len(s.buf), cap(s.buf))
		}
	}
	r, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, d.pts, r, 50)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{MaxPoints: 1}); err == nil {
		t.Error("MaxPoints 1 accepted")
	}
	if _, err := New(Config{MaxPoints: 100, Buffer: 399}); err == nil {
		t.Error("a buffer under 4 x MaxPoints accepted")
	}
	s, _ := New(Config{MaxPoints: 10})
	if err := s.Add(Point{UnixMicro: 10}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(Point{UnixMicro: 10}); err == nil {
		t.Error("a fix at the same time as the previous one accepted")
	}
	empty, _ := New(Config{MaxPoints: 10})
	if r, err := empty.Result(); err != nil || len(r.Points) != 0 || r.Fixes != 0 {
		t.Errorf("empty track: %+v, %v", r, err)
	}
}
