package simulator

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/position"
)

var t0 = time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)

// drive steps f every `every` for `span`, calling check with each round.
func drive(f *Fleet, every, span time.Duration, check func(round int, fixes []Fix)) {
	for r := 0; time.Duration(r)*every <= span; r++ {
		check(r, f.Step(t0.Add(time.Duration(r)*every)))
	}
}

func mustFleet(t testing.TB, seed uint64, n int) *Fleet {
	t.Helper()
	f, err := NewFleet(seed, n, Shanghai())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFleetIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b, other := mustFleet(t, 42, 200), mustFleet(t, 42, 200), mustFleet(t, 43, 200)
	differs := false
	for r := range 600 {
		now := t0.Add(time.Duration(r) * time.Second)
		fa, fb, fo := a.Step(now), b.Step(now), other.Step(now)
		if !reflect.DeepEqual(fa, fb) {
			t.Fatalf("round %d: same seed, different fixes:\n%+v\n%+v", r, fa[0], fb[0])
		}
		differs = differs || !reflect.DeepEqual(fa, fo)
	}
	if !differs {
		t.Error("seeds 42 and 43 gave the same fleet")
	}
}

func TestVehicleDoesNotDependOnFleetSize(t *testing.T) {
	t.Parallel()
	small, large := mustFleet(t, 7, 10), mustFleet(t, 7, 300)
	for r := range 300 {
		now := t0.Add(time.Duration(r) * 2 * time.Second)
		fs, fl := small.Step(now), large.Step(now)
		if !reflect.DeepEqual(fs, fl[:len(fs)]) {
			t.Fatalf("round %d: vehicle 0..9 differ between a fleet of 10 and of 300", r)
		}
	}
}

func TestPlatesAreUniqueAndValid(t *testing.T) {
	t.Parallel()
	var provs []string
	for _, p := range provinces {
		provs = append(provs, p.char)
	}
	shape := regexp.MustCompile(`^(` + strings.Join(provs, "|") + `)[A-HJ-N][0-9A-HJ-NP-Z]{5}$`)
	f := mustFleet(t, 1, 20000)
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, p := range f.Plates() {
		if seen[p] {
			t.Fatalf("plate %s given twice", p)
		}
		seen[p] = true
		if !shape.MatchString(p) {
			t.Errorf("plate %q does not look like a Chinese plate", p)
		}
		serial := []rune(p)[2:]
		letters := 0
		for _, r := range serial {
			if r >= 'A' && r <= 'Z' {
				letters++
			}
		}
		if letters > plateMaxLetters {
			t.Errorf("plate %q has %d letters in its serial; real plates have at most %d", p, letters, plateMaxLetters)
		}
		norm, rej := position.NormalizePlate("plateNum", p)
		if rej != nil || norm != p {
			t.Errorf("plate %q: NormalizePlate gives %q, %v", p, norm, rej)
		}
		counts[string([]rune(p)[:1])]++
	}
	if share := float64(counts["沪"]) / float64(len(seen)); share < 0.35 || share > 0.55 {
		t.Errorf("share of 沪 plates is %.2f; a Shanghai fleet is mostly local", share)
	}
}

// TestFleetBehaves drives a fleet for two hours and checks every fix
// against what a truck can do.
func TestFleetBehaves(t *testing.T) {
	t.Parallel()
	const n = 100
	f := mustFleet(t, 3, n)
	area := f.Area()
	prev := make([]Fix, n)
	type seen struct{ moved, fast, stopped bool }
	saw := make([]seen, n)
	drive(f, time.Second, 2*time.Hour, func(r int, fixes []Fix) {
		if len(fixes) != n {
			t.Fatalf("round %d: %d fixes for %d vehicles", r, len(fixes), n)
		}
		for i, fx := range fixes {
			v := &f.vehicles[i]
			if !fx.Time.Equal(t0.Add(time.Duration(r) * time.Second)) {
				t.Fatalf("fix time %v in round %d", fx.Time, r)
			}
			if fx.SpeedKmh < 0 || fx.SpeedKmh > 120 || math.IsNaN(fx.SpeedKmh) {
				t.Fatalf("%s: speed %v km/h", fx.Plate, fx.SpeedKmh)
			}
			if fx.Course < 0 || fx.Course >= 360 {
				t.Fatalf("%s: course %v", fx.Plate, fx.Course)
			}
			if d := haversineKm(area.Lat, area.Lng, fx.Lat, fx.Lng); d > area.RadiusKm {
				t.Fatalf("%s: %.2f km from the centre, outside the %v km area", fx.Plate, d, area.RadiusKm)
			}
			if r == 0 {
				continue
			}
			p := prev[i]
			same := p.Lat == fx.Lat && p.Lng == fx.Lng
			if v.parked && (fx.SpeedKmh != 0 || !same) {
				t.Fatalf("%s is parked for good but reports %v km/h at (%v, %v), was (%v, %v)", fx.Plate, fx.SpeedKmh, fx.Lat, fx.Lng, p.Lat, p.Lng)
			}
			if p.SpeedKmh == 0 && fx.SpeedKmh == 0 && !same {
				t.Fatalf("%s moved while standing", fx.Plate)
			}
			// A truck gains or sheds at most a few km/h per second (plus
			// the speedometer's wobble): no jumps from cruise to 0.
			if dv := math.Abs(fx.SpeedKmh - p.SpeedKmh); dv > 12 {
				t.Fatalf("%s: speed %v -> %v km/h in one second", fx.Plate, p.SpeedKmh, fx.SpeedKmh)
			}
			if !same {
				if step := haversineKm(p.Lat, p.Lng, fx.Lat, fx.Lng) * 1000; step > 90/3.6+1 {
					t.Fatalf("%s: %.0f m in one second", fx.Plate, step)
				}
			}
			s := &saw[i]
			s.moved = s.moved || !same
			s.fast = s.fast || fx.SpeedKmh >= minCruiseKmh*0.9
			s.stopped = s.stopped || (p.SpeedKmh > 0 && fx.SpeedKmh == 0)
		}
		copy(prev, fixes)
	})
	var parked, cycled int
	for i, s := range saw {
		if f.vehicles[i].parked {
			parked++
			continue
		}
		if s.fast && s.stopped {
			cycled++
		}
	}
	if parked < n/20 || parked > n/5 {
		t.Errorf("%d of %d vehicles parked for good; about a tenth should be", parked, n)
	}
	// In two hours nearly every working truck has driven at speed and
	// come to a stop at a site.
	if cycled < (n-parked)*8/10 {
		t.Errorf("only %d of %d working vehicles both drove at speed and stopped", cycled, n-parked)
	}
}

func TestStepAtTheSameTimeMovesNothing(t *testing.T) {
	t.Parallel()
	f := mustFleet(t, 5, 50)
	f.Step(t0)
	a := f.Step(t0.Add(time.Minute))
	b := f.Step(t0.Add(time.Minute))
	c := f.Step(t0) // earlier: no travel back in time
	for i := range a {
		if a[i].Lat != b[i].Lat || a[i].Lng != b[i].Lng || b[i].Lat != c[i].Lat || b[i].Lng != c[i].Lng {
			t.Fatalf("%s moved without time passing", a[i].Plate)
		}
	}
}

func TestShanghaiIsAPlausibleArea(t *testing.T) {
	t.Parallel()
	a := Shanghai()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(a.Sites) < 20 || len(a.Sites) > 40 {
		t.Errorf("%d sites", len(a.Sites))
	}
	kinds := map[SiteKind]int{}
	names := map[string]bool{}
	for _, s := range a.Sites {
		kinds[s.Kind]++
		if names[s.Name] {
			t.Errorf("site name %q used twice", s.Name)
		}
		names[s.Name] = true
	}
	for _, k := range []SiteKind{SiteLoading, SiteUnloading, SiteOil} {
		if kinds[k] < 3 {
			t.Errorf("%d %s sites", kinds[k], k)
		}
	}
}

func TestAreaValidate(t *testing.T) {
	t.Parallel()
	two := []Site{{"a", SiteLoading, 31.2, 121.4}, {"b", SiteUnloading, 31.25, 121.5}}
	for name, a := range map[string]Area{
		"no radius":      {Name: "x", Lat: 31.2, Lng: 121.4, Sites: two},
		"one site":       {Name: "x", Lat: 31.2, Lng: 121.4, RadiusKm: 20, Sites: two[:1]},
		"site outside":   {Name: "x", Lat: 31.2, Lng: 121.4, RadiusKm: 5, Sites: two},
		"bad centre":     {Name: "x", Lat: 95, Lng: 121.4, RadiusKm: 20, Sites: two},
		"huge radius":    {Name: "x", Lat: 31.2, Lng: 121.4, RadiusKm: 5000, Sites: two},
		"NaN coordinate": {Name: "x", Lat: 31.2, Lng: 121.4, RadiusKm: 20, Sites: []Site{two[0], {"n", SiteOil, math.NaN(), 121}}},
	} {
		if a.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A two-site area without oil stations still works: vehicles shuttle.
	f, err := NewFleet(1, 20, Area{Name: "x", Lat: 31.2, Lng: 121.4, RadiusKm: 20, Sites: two})
	if err != nil {
		t.Fatal(err)
	}
	drive(f, 10*time.Second, 4*time.Hour, func(int, []Fix) {})
}

func haversineKm(lat1, lng1, lat2, lng2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLng := (lat2-lat1)*rad, (lng2-lng1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM / 1000 * math.Asin(math.Sqrt(h))
}

func BenchmarkStep(b *testing.B) {
	f := mustFleet(b, 1, 1000)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		f.Step(now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*f.Len()), "ns/fix")
}
