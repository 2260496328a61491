package geofence

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	uberh3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// The oracle is a second, deliberately naive implementation of the
// geofence's documented semantics with hysteresis off (enter on one fix
// inside, leave on one fix outside, no margin): brute-force membership
// (haversine to every circle, exact test of every polygon, every version),
// plain maps, no index, no runs. The tracker, with a real index, must give
// the same transitions, in the same order, for the same fixes.

var hysteresisOff = geofence.Config{
	ReorderWindow: 3 * time.Second,
	Detection:     geofence.Detection{EnterConfirmFixes: 1, ExitMarginM: 0, ExitConfirmFixes: 1},
}

// stationVersion is a station as it stood in [from, until) (until zero
// while current).
type stationVersion struct {
	st          geofence.Station
	from, until time.Time
}

func (v stationVersion) validAt(t time.Time) bool {
	return !t.Before(v.from) && (v.until.IsZero() || t.Before(v.until))
}

type oracleVisit struct {
	id        string
	enteredAt time.Time
	version   int64
}

type oracleVehicle struct {
	plate     string
	last      *geofence.Fix
	maxSeen   time.Time
	pending   []geofence.Fix
	recent    []int64
	inside    map[string]oracleVisit
	lastVisit map[string][2]time.Time
}

type oracle struct {
	cfg      geofence.Config
	versions []stationVersion
	vehicles map[string]*oracleVehicle
}

func newOracle(cfg geofence.Config) *oracle {
	cfg.SetDefaults()
	return &oracle{cfg: cfg, vehicles: map[string]*oracleVehicle{}}
}

// at returns station id's version valid at t.
func (o *oracle) at(id string, t time.Time) *stationVersion {
	for i := range o.versions {
		if o.versions[i].st.ID == id && o.versions[i].validAt(t) {
			return &o.versions[i]
		}
	}
	return nil
}

func (o *oracle) containing(f geofence.Fix) map[string]*stationVersion {
	in := map[string]*stationVersion{}
	for i := range o.versions {
		v := &o.versions[i]
		if v.validAt(f.Time) && v.st.Shape.Contains(f.Point) {
			in[v.st.ID] = v
		}
	}
	return in
}

func visitID(plate, station string, at time.Time, late bool) string {
	kind := "visit"
	if late {
		kind = "late-visit"
	}
	return event.ID(kind, plate, station, at.UTC().Format(time.RFC3339Nano))
}

func (o *oracle) observe(plate string, f geofence.Fix) []geofence.Transition {
	v := o.vehicles[plate]
	if v == nil {
		v = &oracleVehicle{plate: plate, inside: map[string]oracleVisit{}, lastVisit: map[string][2]time.Time{}}
		o.vehicles[plate] = v
	}
	ms := f.Time.UnixMilli()
	for _, r := range v.recent {
		if r == ms {
			return nil
		}
	}
	for _, p := range v.pending {
		if p.Time.Equal(f.Time) {
			return nil
		}
	}
	v.recent = append(v.recent, ms)
	if len(v.recent) > o.cfg.RecentFixes {
		v.recent = v.recent[1:]
	}
	if v.last != nil && !f.Time.After(v.last.Time) {
		return o.late(v, f)
	}
	v.pending = append(v.pending, f)
	slices.SortFunc(v.pending, func(a, b geofence.Fix) int { return a.Time.Compare(b.Time) })
	if f.Time.After(v.maxSeen) {
		v.maxSeen = f.Time
	}
	var out []geofence.Transition
	for len(v.pending) > 0 && !v.pending[0].Time.After(v.maxSeen.Add(-o.cfg.ReorderWindow)) {
		next := v.pending[0]
		v.pending = v.pending[1:]
		out = append(out, o.decide(v, next)...)
	}
	return out
}

func (o *oracle) late(v *oracleVehicle, f geofence.Fix) []geofence.Transition {
	var out []geofence.Transition
	for id, ver := range o.containing(f) {
		if vis, ok := v.inside[id]; ok && !f.Time.Before(vis.enteredAt) {
			continue
		}
		if lv, ok := v.lastVisit[id]; ok && !f.Time.Before(lv[0]) && !f.Time.After(lv[1]) {
			continue
		}
		vid := visitID(v.plate, id, f.Time, true)
		base := geofence.Transition{Vehicle: v.plate, StationID: id, StationType: ver.st.Type, StationVersion: ver.st.Version,
			VisitID: vid, At: f.Time, Point: f.Point, Flags: []string{geofence.FlagLate}}
		enter, exit := base, base
		enter.Kind, exit.Kind, exit.EnteredAt = geofence.Entered, geofence.Exited, f.Time
		out = append(out, enter, exit)
	}
	sortTransitions(out)
	return out
}

func (o *oracle) decide(v *oracleVehicle, f geofence.Fix) []geofence.Transition {
	var out []geofence.Transition
	prev := v.last
	var gap time.Duration
	if prev != nil && f.Time.Sub(prev.Time) > o.cfg.SilenceGap {
		gap = f.Time.Sub(prev.Time)
	}
	in := o.containing(f)
	if prev != nil && gap == 0 && math.Abs(f.Point.Lng-prev.Point.Lng) <= 180 {
		for i := range o.versions {
			ver := &o.versions[i]
			id := ver.st.ID
			if !ver.validAt(prev.Time) || !ver.validAt(f.Time) || in[id] != nil {
				continue
			}
			if _, inside := v.inside[id]; inside || ver.st.Shape.Contains(prev.Point) {
				continue
			}
			sIn, sOut, ok := crossingOf(ver.st.Shape, prev.Point, f.Point)
			if !ok {
				continue
			}
			span := f.Time.Sub(prev.Time)
			inAt := prev.Time.Add(time.Duration(sIn * float64(span))).Round(time.Millisecond)
			outAt := prev.Time.Add(time.Duration(sOut * float64(span))).Round(time.Millisecond)
			vid := visitID(v.plate, id, inAt, false)
			flags := []string{geofence.FlagInterpolated}
			out = append(out,
				geofence.Transition{Kind: geofence.Entered, Vehicle: v.plate, StationID: id, StationType: ver.st.Type,
					StationVersion: ver.st.Version, VisitID: vid, At: inAt, Point: lerpOf(prev.Point, f.Point, sIn), Flags: flags},
				geofence.Transition{Kind: geofence.Exited, Vehicle: v.plate, StationID: id, StationType: ver.st.Type,
					StationVersion: ver.st.Version, VisitID: vid, At: outAt, Point: lerpOf(prev.Point, f.Point, sOut), Flags: flags,
					EnteredAt: inAt, Dwell: outAt.Sub(inAt)})
			v.lastVisit[id] = [2]time.Time{inAt, outAt}
		}
	}
	for _, id := range sortedKeys(v.inside) {
		vis := v.inside[id]
		ver := in[id]
		if ver == nil {
			ver = o.at(id, f.Time)
		}
		typ := ""
		if entered := o.at(id, vis.enteredAt); entered != nil {
			typ = entered.st.Type
		}
		tr := geofence.Transition{Kind: geofence.Exited, Vehicle: v.plate, StationID: id, StationType: typ,
			VisitID: vis.id, At: f.Time, Point: f.Point, EnteredAt: vis.enteredAt, Dwell: f.Time.Sub(vis.enteredAt)}
		switch {
		case ver == nil:
			tr.Flags, tr.StationVersion = []string{geofence.FlagStationDeleted}, vis.version
		case ver.st.Shape.Contains(f.Point):
			continue
		default:
			tr.StationVersion = ver.st.Version
			if ver.st.Version != vis.version {
				tr.Flags = append(tr.Flags, geofence.FlagStationChanged)
			}
			if gap > 0 {
				tr.Flags, tr.Gap = append(tr.Flags, geofence.FlagGap), gap
			}
		}
		out = append(out, tr)
		delete(v.inside, id)
		v.lastVisit[id] = [2]time.Time{vis.enteredAt, f.Time}
	}
	for _, id := range sortedKeys(in) {
		if _, inside := v.inside[id]; inside {
			continue
		}
		ver := in[id]
		cause := ""
		if prev == nil {
			cause = geofence.CauseFirstSeen
		} else if before := o.at(id, prev.Time); before == nil {
			cause = geofence.CauseStationAdded
		} else if before != ver && !before.st.Shape.Contains(prev.Point) && ver.st.Shape.Contains(prev.Point) {
			cause = geofence.CauseStationChanged
		}
		tr := geofence.Transition{Kind: geofence.Entered, Vehicle: v.plate, StationID: id, StationType: ver.st.Type,
			StationVersion: ver.st.Version, VisitID: visitID(v.plate, id, f.Time, false), At: f.Time, Point: f.Point,
			InitialCause: cause, Gap: gap}
		if cause != "" {
			tr.Flags = append(tr.Flags, geofence.FlagInitial)
		}
		if cause == geofence.CauseStationChanged {
			tr.Flags = append(tr.Flags, geofence.FlagStationChanged)
		}
		if gap > 0 {
			tr.Flags = append(tr.Flags, geofence.FlagGap)
		}
		out = append(out, tr)
		v.inside[id] = oracleVisit{id: tr.VisitID, enteredAt: f.Time, version: ver.st.Version}
	}
	for id, lv := range v.lastVisit {
		if _, inside := v.inside[id]; !inside && f.Time.Sub(lv[1]) > o.cfg.LateHorizon {
			delete(v.lastVisit, id)
		}
	}
	v.last = &f
	sortTransitions(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortTransitions is the documented order: by time; at equal times,
// exits of visits that began earlier first, then by station, entry before
// exit.
func sortTransitions(ts []geofence.Transition) {
	phase := func(t geofence.Transition) int {
		if t.Kind == geofence.Exited && t.EnteredAt.Before(t.At) {
			return 0 // ends a visit that began earlier
		}
		return 1
	}
	slices.SortStableFunc(ts, func(a, b geofence.Transition) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(phase(a), phase(b)),
			cmp.Compare(a.StationID, b.StationID), cmp.Compare(a.Kind, b.Kind))
	})
}

// describe renders a transition for comparison.
func describe(t geofence.Transition) string {
	return fmt.Sprintf("%s %s %s v%d %s %s (%.9f,%.9f) %v %s in=%s dwell=%s gap=%s", t.Vehicle, t.Kind, t.StationID,
		t.StationVersion, t.StationType, t.At.UTC().Format(time.RFC3339Nano), t.Point.Lat, t.Point.Lng, t.Flags,
		t.InitialCause, t.EnteredAt.UTC().Format(time.RFC3339Nano), t.Dwell, t.Gap)
}

// stationChange is a station version from At on (Station set), or the
// end of a station at At (Deleted set).
type stationChange struct {
	Station *geofence.Station
	Deleted string
	At      time.Time
}

// scenario is a randomised world: stations with their versions, and the
// fixes of a fleet in arrival order.
type scenario struct {
	changes []stationChange
	fixes   []struct {
		plate string
		fix   geofence.Fix
	}
}

// compare runs scenario s through the tracker (over the index newIndex
// makes) and through the oracle, and reports the first difference.
func compare(t *testing.T, s scenario, newIndex func() (geofence.Index, error)) (transitions int) {
	t.Helper()
	idx, err := newIndex()
	if err != nil {
		t.Fatal(err)
	}
	catalog := geofence.NewCatalog(idx)
	tracker, err := geofence.NewTracker(hysteresisOff, catalog)
	if err != nil {
		t.Fatal(err)
	}
	o := newOracle(hysteresisOff)
	for _, c := range s.changes {
		if c.Station != nil {
			if err := catalog.Upsert(*c.Station, c.At); err != nil {
				t.Fatal(err)
			}
			for i := range o.versions {
				if o.versions[i].st.ID == c.Station.ID && o.versions[i].until.IsZero() {
					o.versions[i].until = c.At
				}
			}
			o.versions = append(o.versions, stationVersion{st: *c.Station, from: c.At})
			continue
		}
		catalog.Delete(c.Deleted, c.At)
		for i := range o.versions {
			if o.versions[i].st.ID == c.Deleted && o.versions[i].until.IsZero() {
				o.versions[i].until = c.At
			}
		}
	}
	vehicles := map[string]*geofence.Vehicle{}
	var got []geofence.Transition
	for i, x := range s.fixes {
		v := vehicles[x.plate]
		if v == nil {
			v = geofence.NewVehicle(geofence.VehicleState{Plate: x.plate})
			vehicles[x.plate] = v
		}
		before := len(got)
		got = tracker.Observe(v, x.fix, got)
		want := o.observe(x.plate, x.fix)
		if !equalTransitions(got[before:], want) {
			t.Fatalf("fix %d (%s at %s %v) gave\n  %s\nthe oracle says\n  %s", i, x.plate,
				x.fix.Time.Format(time.RFC3339Nano), x.fix.Point, join(got[before:]), join(want))
		}
	}
	return len(got)
}

func equalTransitions(a, b []geofence.Transition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if describe(a[i]) != describe(b[i]) || a[i].VisitID != b[i].VisitID {
			return false
		}
	}
	return true
}

func join(ts []geofence.Transition) string {
	var s []string
	for _, t := range ts {
		s = append(s, describe(t))
	}
	return strings.Join(s, "\n  ")
}

// crossingOf and lerpOf expose the segment estimate the tracker uses:
// the oracle shares it (it is tested on its own, in domain/geofence), so
// that the comparison is about which crossings there are, not about the
// last digit of their estimated times.
var crossingOf = geofence.SegmentCrossing
var lerpOf = geofence.Lerp

// newScenario builds a world around clusters of stations: the given
// cluster centres, overlapping circles and polygons (with holes), one of
// them changed and one deleted midway, and a fleet driving through with
// sparse, out-of-order, late and duplicate fixes, silences, and vehicles
// standing exactly on fences and on the corners of H3 cells.
func newScenario(seed uint64, centres []geo.Point) scenario {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var s scenario
	var shapes []geofence.Shape
	n := 0
	for _, c := range centres {
		for range 6 + rnd.IntN(6) {
			n++
			id := fmt.Sprintf("S%03d", n)
			shape := randomShape(rnd, c)
			shapes = append(shapes, shape)
			typ := []string{geofence.TypeLoading, geofence.TypeUnloading, geofence.TypeHazard, geofence.TypeParking}[rnd.IntN(4)]
			st := geofence.Station{ID: id, Type: typ, Version: 1, Shape: shape}
			s.changes = append(s.changes, stationChange{Station: &st, At: t0.Add(-time.Hour)})
			switch rnd.IntN(8) {
			case 0: // changed midway
				changed := geofence.Station{ID: id, Type: typ, Version: 2, Shape: randomShape(rnd, c)}
				s.changes = append(s.changes, stationChange{Station: &changed, At: t0.Add(time.Duration(rnd.IntN(1800)) * time.Second)})
			case 1: // deleted midway
				s.changes = append(s.changes, stationChange{Deleted: id, At: t0.Add(time.Duration(rnd.IntN(1800)) * time.Second)})
			}
		}
	}
	slices.SortStableFunc(s.changes, func(a, b stationChange) int { return a.At.Compare(b.At) })
	for v := range 12 {
		plate := fmt.Sprintf("沪T%05d", v)
		c := centres[rnd.IntN(len(centres))]
		p := jitter(rnd, c, 3000)
		at := t0.Add(time.Duration(rnd.IntN(60)) * time.Second)
		var delayed []geofence.Fix
		for range 150 {
			switch r := rnd.IntN(100); {
			case r < 60: // drive
				p = toward(p, jitter(rnd, c, 2500), 5+rnd.Float64()*600)
			case r < 70: // stand on a fence: a polygon vertex, or a circle's edge
				p = onBoundary(rnd, shapes[rnd.IntN(len(shapes))])
			case r < 74: // stand on a corner of the H3 cell the index files the point under
				b := uberh3.LatLngToCell(uberh3.NewLatLng(p.Lat, p.Lng), h3.DefaultResolution).Boundary()
				v := b[rnd.IntN(len(b))]
				p = geo.Point{Lat: v.Lat, Lng: v.Lng}
			case r < 72: // a silence
				at = at.Add(15 * time.Minute)
			}
			at = at.Add(time.Duration(1+rnd.IntN(30)) * time.Second)
			f := geofence.Fix{Time: at, Point: p}
			switch r := rnd.IntN(100); {
			case r < 8: // arrives late
				delayed = append(delayed, f)
				continue
			case r < 14: // duplicated
				s.add(plate, f)
			case r < 20 && len(s.fixes) > 0: // swapped with the previous fix of this vehicle
				for i := len(s.fixes) - 1; i >= 0; i-- {
					if s.fixes[i].plate == plate {
						s.fixes[i].fix, f = f, s.fixes[i].fix
						break
					}
				}
			}
			s.add(plate, f)
			if len(delayed) > 0 && rnd.IntN(5) == 0 {
				s.add(plate, delayed[0])
				delayed = delayed[1:]
			}
		}
		for _, f := range delayed {
			s.add(plate, f)
		}
	}
	// Interleave the vehicles as a partition would.
	rnd.Shuffle(len(s.fixes), func(i, j int) {
		if s.fixes[i].plate != s.fixes[j].plate {
			return
		}
		s.fixes[i], s.fixes[j] = s.fixes[j], s.fixes[i]
	})
	return s
}

func (s *scenario) add(plate string, f geofence.Fix) {
	s.fixes = append(s.fixes, struct {
		plate string
		fix   geofence.Fix
	}{plate, f})
}

// jitter returns a point within about r metres of c.
func jitter(rnd *rand.Rand, c geo.Point, r float64) geo.Point {
	d := rnd.Float64() * r
	a := rnd.Float64() * 2 * math.Pi
	return offset(c, d*math.Cos(a), d*math.Sin(a))
}

// offset moves p north and east by metres (longitude wrapped, latitude
// clamped).
func offset(p geo.Point, north, east float64) geo.Point {
	lat := math.Max(-90, math.Min(90, p.Lat+north/geo.MetresPerDegreeLat))
	cos := math.Max(math.Cos(p.Lat*math.Pi/180), 1e-6)
	lng := p.Lng + east/(geo.MetresPerDegreeLat*cos)
	for lng > 180 {
		lng -= 360
	}
	for lng < -180 {
		lng += 360
	}
	return geo.Point{Lat: lat, Lng: lng}
}

// toward moves p up to step metres towards q.
func toward(p, q geo.Point, step float64) geo.Point {
	d := geo.Haversine(p, q)
	if d <= step {
		return q
	}
	s := step / d
	return geo.Point{Lat: p.Lat + s*(q.Lat-p.Lat), Lng: p.Lng + s*(q.Lng-p.Lng)}
}

func randomShape(rnd *rand.Rand, c geo.Point) geofence.Shape {
	centre := jitter(rnd, c, 1500)
	if rnd.IntN(2) == 0 {
		return geofence.Shape{Circle: &geo.Circle{Center: centre, RadiusM: 10 + rnd.Float64()*800}}
	}
	// A star-shaped (hence simple) ring, concave, with a square hole in
	// the middle half the time.
	r := 50 + rnd.Float64()*700
	var ring geo.Ring
	k := 5 + rnd.IntN(8)
	for i := range k {
		a := 2 * math.Pi * float64(i) / float64(k)
		rr := r * (0.5 + 0.5*rnd.Float64())
		ring = append(ring, offset(centre, rr*math.Sin(a), rr*math.Cos(a)))
	}
	ring = append(ring, ring[0])
	pg := geo.Polygon{ring}
	if rnd.IntN(2) == 0 {
		h := r * 0.15
		sw, ne := offset(centre, -h, -h), offset(centre, h, h)
		pg = append(pg, geo.Ring{sw, {Lat: sw.Lat, Lng: ne.Lng}, ne, {Lat: ne.Lat, Lng: sw.Lng}, sw})
	}
	if geo.ValidatePolygon("test", pg) != nil {
		pg = geo.Polygon{ring}
	}
	if geo.ValidatePolygon("test", pg) != nil {
		// Across the antimeridian, or folded over a pole: not a shape a
		// user could define. A circle there instead.
		return geofence.Shape{Circle: &geo.Circle{Center: centre, RadiusM: r}}
	}
	return geofence.Shape{Polygons: geo.MultiPolygon{pg}}
}

// onBoundary returns a point exactly on the shape's fence: a polygon
// vertex, or the last representable point inside a circle along a random
// bearing.
func onBoundary(rnd *rand.Rand, s geofence.Shape) geo.Point {
	if s.Circle == nil {
		ring := s.Polygons[0][rnd.IntN(len(s.Polygons))]
		return ring[rnd.IntN(len(ring))]
	}
	c := *s.Circle
	a := rnd.Float64() * 2 * math.Pi
	far := offset(c.Center, 2*c.RadiusM*math.Sin(a), 2*c.RadiusM*math.Cos(a))
	lo, hi := 0.0, 1.0 // lo inside, hi outside
	for range 200 {
		m := (lo + hi) / 2
		if m == lo || m == hi {
			break
		}
		if c.Contains(geo.Point{Lat: c.Center.Lat + m*(far.Lat-c.Center.Lat), Lng: c.Center.Lng + m*(far.Lng-c.Center.Lng)}) {
			lo = m
		} else {
			hi = m
		}
	}
	return geo.Point{Lat: c.Center.Lat + lo*(far.Lat-c.Center.Lat), Lng: c.Center.Lng + lo*(far.Lng-c.Center.Lng)}
}

// TestTrackerAgreesWithTheOracle runs randomised worlds, including
// clusters at the antimeridian and the poles, through the tracker over
// the H3 index, as the service runs it, and over the brute-force index,
// and through the oracle.
func TestTrackerAgreesWithTheOracle(t *testing.T) {
	t.Parallel()
	worlds := map[string][]geo.Point{
		"shanghai": {{Lat: 31.23, Lng: 121.47}, {Lat: 31.30, Lng: 121.50}},
		// Eight clusters within 2 km: 50 to 90 stations overlapping, the
		// dense depots of issue 12.
		"dense": {{Lat: 31.23, Lng: 121.47}, {Lat: 31.235, Lng: 121.475}, {Lat: 31.225, Lng: 121.468}, {Lat: 31.232, Lng: 121.462},
			{Lat: 31.228, Lng: 121.48}, {Lat: 31.24, Lng: 121.47}, {Lat: 31.22, Lng: 121.475}, {Lat: 31.236, Lng: 121.465}},
		"antimeridian": {{Lat: -16.5, Lng: 179.995}, {Lat: -16.5, Lng: -179.995}},
		"north pole":   {{Lat: 89.99, Lng: 0}},
		"south pole":   {{Lat: -89.995, Lng: 120}},
	}
	indexes := map[string]func() (geofence.Index, error){
		"h3":         func() (geofence.Index, error) { return h3.New(h3.Config{}) },
		"bruteforce": func() (geofence.Index, error) { return geofence.NewBruteForce(), nil },
	}
	for name, centres := range worlds {
		for index, newIndex := range indexes {
			t.Run(name+"/"+index, func(t *testing.T) {
				t.Parallel()
				total := 0
				for seed := range uint64(20) {
					total += compare(t, newScenario(seed, centres), newIndex)
				}
				if total < 100 {
					t.Errorf("only %d transitions in 20 worlds: the scenarios do not exercise the geofence", total)
				}
				t.Logf("%d transitions agreed", total)
			})
		}
	}
}
