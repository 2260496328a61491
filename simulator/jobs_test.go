package simulator

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/station"
)

func mustJobFleet(t testing.TB, seed uint64, n int, area Area, opts ...FleetOption) *Fleet {
	t.Helper()
	f, err := NewFleet(seed, n, area, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestJobsAreDeterministicForASeed(t *testing.T) {
	t.Parallel()
	a := mustJobFleet(t, 42, 30, Shanghai(), WithJobs(40))
	b := mustJobFleet(t, 42, 30, Shanghai(), WithJobs(40))
	other := mustJobFleet(t, 43, 30, Shanghai(), WithJobs(40))
	if !reflect.DeepEqual(a.Jobs(), b.Jobs()) {
		t.Fatal("same seed, different jobs")
	}
	if reflect.DeepEqual(a.Jobs(), other.Jobs()) {
		t.Error("seeds 42 and 43 gave the same jobs")
	}
	for r := range 1200 {
		now := t0.Add(time.Duration(r) * time.Second)
		if fa, fb := a.Step(now), b.Step(now); !reflect.DeepEqual(fa, fb) {
			t.Fatalf("round %d: same seed and jobs, different fixes", r)
		}
	}
	// A job is the same whatever the number of jobs and, while there are
	// no more jobs than vehicles, whatever the fleet's size: a second run
	// with other counts repeats the jobs they share.
	few := mustJobFleet(t, 42, 30, Shanghai(), WithJobs(5)).Jobs()
	larger := mustJobFleet(t, 42, 100, Shanghai(), WithJobs(30)).Jobs()
	for k, j := range few {
		if !reflect.DeepEqual(j, a.Jobs()[k]) || !reflect.DeepEqual(j, larger[k]) {
			t.Errorf("job %d differs with other job or vehicle counts:\n%+v\n%+v\n%+v", k, j, a.Jobs()[k], larger[k])
		}
	}
}

func TestJobsAreWhatADispatcherPlans(t *testing.T) {
	t.Parallel()
	for _, area := range []Area{Shanghai(), Yard()} {
		const vehicles, jobs, seed = 40, 100, 9
		f := mustJobFleet(t, seed, vehicles, area, WithJobs(jobs))
		plates := f.Plates()
		refs := map[string]bool{}
		var quality, twoDrops int
		for k, j := range f.Jobs() {
			name := fmt.Sprintf("%s job %d", area.Name, k)
			if j.Index != k || j.Vehicle != k%vehicles || j.Plate != plates[j.Vehicle] {
				t.Errorf("%s: index %d, vehicle %d, plate %s", name, j.Index, j.Vehicle, j.Plate)
			}
			if want := fmt.Sprintf("sim:%s:%d:%d", slug(area.Name), seed, k); j.ExternalRef != want || refs[j.ExternalRef] {
				t.Errorf("%s: external_ref %q, want %q, once", name, j.ExternalRef, want)
			}
			refs[j.ExternalRef] = true
			if j.CargoKg < minCargoKg || j.CargoKg > maxCargoKg || j.Cargo == "" {
				t.Errorf("%s: cargo %v kg of %q", name, j.CargoKg, j.Cargo)
			}
			for _, s := range j.Stops {
				if s.StationID != area.StationID(s.Site) {
					t.Errorf("%s: stop at site %d names station %s", name, s.Site, s.StationID)
				}
			}
			st := j.Stops
			if len(st) < 2 || st[0].Kind != StopLoading || area.Sites[st[0].Site].Kind != SiteLoading {
				t.Fatalf("%s: %+v does not begin with a loading at a loading site", name, st)
			}
			rest := st[1:]
			if rest[0].Kind == StopQuality {
				quality++
				if rest[0].Site != st[0].Site {
					t.Errorf("%s: the quality check is not at the loading site", name)
				}
				rest = rest[1:]
			}
			if len(rest) == 2 {
				twoDrops++
			}
			if len(rest) < 1 || len(rest) > 2 {
				t.Fatalf("%s: %d unloading stops", name, len(rest))
			}
			for i, s := range rest {
				if s.Kind != StopUnloading || area.Sites[s.Site].Kind != SiteUnloading {
					t.Errorf("%s: %+v is not an unloading at an unloading site", name, s)
				}
				if i == 1 && s.Site == rest[0].Site {
					t.Errorf("%s: two drops at one site", name)
				}
			}
		}
		if quality < jobs/10 || quality > jobs/2 || twoDrops < jobs/5 || twoDrops > jobs*6/10 {
			t.Errorf("%s: %d of %d jobs with a quality check, %d with two drops", area.Name, quality, jobs, twoDrops)
		}
	}
}

func TestVehiclesWithoutJobsKeepTheirCycle(t *testing.T) {
	t.Parallel()
	plain, withJobs := mustFleet(t, 11, 40), mustJobFleet(t, 11, 40, Shanghai(), WithJobs(8))
	for r := range 1800 {
		now := t0.Add(time.Duration(r) * 2 * time.Second)
		fp, fj := plain.Step(now), withJobs.Step(now)
		if !reflect.DeepEqual(fp[8:], fj[8:]) {
			t.Fatalf("round %d: vehicles 8..39, which have no job, drive otherwise when 0..7 have jobs", r)
		}
	}
}

// stay is a vehicle's visit to a site's station as the geofence sees it
// with its default exit margin: entered within the radius, left beyond
// the radius and the margin.
type stay struct {
	site          int
	entered, left time.Time
	// stopped is the time spent standing inside; far is how far from the
	// site's centre the vehicle stood, at most.
	stopped time.Duration
	far     float64
}

const exitMarginM = 30 // tms's default (TMS_GEOFENCE_EXIT_MARGIN_M)

// stays drives f from t0 every `every` for span and returns each
// vehicle's stays in order, those where it stopped only (not a drive
// through a station on the way).
func stays(f *Fleet, every, span time.Duration) [][]stay {
	area := f.Area()
	r := area.StationRadius()
	out := make([][]stay, f.Len())
	open := make([]map[int]*stay, f.Len())
	for i := range open {
		open[i] = map[int]*stay{}
	}
	drive(f, every, span, func(_ int, fixes []Fix) {
		for vi, fx := range fixes {
			for si, s := range area.Sites {
				d := haversineKm(s.Lat, s.Lng, fx.Lat, fx.Lng) * 1000
				st := open[vi][si]
				switch {
				case st == nil && d <= r:
					open[vi][si] = &stay{site: si, entered: fx.Time}
				case st != nil && d > r+exitMarginM:
					st.left = fx.Time
					if st.stopped > 0 {
						out[vi] = append(out[vi], *st)
					}
					delete(open[vi], si)
				case st != nil && fx.SpeedKmh == 0:
					st.stopped += every
					st.far = max(st.far, d)
				}
			}
		}
	})
	return out
}

// TestVehiclesDriveTheirJobsStopByStop drives fleets with jobs and checks
// what the geofence and the job processor will see: each vehicle with
// jobs stops at its jobs' stations in their order, one stay per site
// (a loading and its quality check together), standing well inside the
// station for about as long as the stops take, and leaves each beyond
// the exit margin before the next.
func TestVehiclesDriveTheirJobsStopByStop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		area        Area
		dwell       time.Duration
		vehicles    int
		jobs        int
		every, span time.Duration
	}{
		// Some vehicles have two jobs, one after the other.
		{Yard(), 5 * time.Second, 5, 8, 200 * time.Millisecond, 15 * time.Minute},
		{Shanghai(), 0, 12, 16, time.Second, 8 * time.Hour},
	} {
		t.Run(tc.area.Name, func(t *testing.T) {
			t.Parallel()
			f := mustJobFleet(t, 5, tc.vehicles, tc.area, WithDwell(tc.dwell), WithJobs(tc.jobs))
			all := stays(f, tc.every, tc.span)
			r := tc.area.StationRadius()
			for vi := range tc.vehicles {
				var want []jobVisit
				var jobs []Job
				for _, j := range f.Jobs() {
					if j.Vehicle == vi {
						jobs = append(jobs, j)
						want = append(want, visitsOf(j)...)
					}
				}
				got := all[vi]
				// A vehicle standing at a site when the run begins is there
				// before its first job, which it leaves for at once.
				if len(got) > 0 && got[0].entered.Equal(t0) && got[0].site != want[0].site {
					got = got[1:]
				}
				if len(got) < len(want) {
					t.Fatalf("vehicle %d: %d stays in %s, want at least its jobs' %d: %+v", vi, len(got), tc.span, len(want), got)
				}
				for i, w := range want {
					g := got[i]
					if g.site != w.site {
						t.Fatalf("vehicle %d (jobs %+v): stay %d at site %d, want %d", vi, jobs, i, g.site, w.site)
					}
					if g.far > 0.4*r+0.5 {
						t.Errorf("vehicle %d: stood %.1f m from the centre of site %d, not well inside its %v m", vi, g.far, g.site, r)
					}
					// Each stop takes 0.5 to 1.5 times the dwell (or
					// minutes); standing is all of it, within a step.
					lo, hi := stayBounds(tc.dwell, w.kinds)
					if g.stopped < lo-tc.every || g.stopped > hi+tc.every {
						t.Errorf("vehicle %d: stood %s at site %d for %v, want %s to %s", vi, g.stopped, g.site, w.kinds, lo, hi)
					}
					if i > 0 && !got[i-1].left.Before(g.entered) {
						t.Errorf("vehicle %d: entered site %d before it left site %d", vi, g.site, got[i-1].site)
					}
				}
			}
		})
	}
}

// visitsOf is a job's stops as stays: one per site in a row.
func visitsOf(j Job) []jobVisit {
	var out []jobVisit
	for _, s := range j.Stops {
		if n := len(out); n > 0 && out[n-1].site == s.Site {
			out[n-1].kinds = append(out[n-1].kinds, s.Kind)
			continue
		}
		out = append(out, jobVisit{site: s.Site, kinds: []StopKind{s.Kind}})
	}
	return out
}

func stayBounds(dwell time.Duration, kinds []StopKind) (lo, hi time.Duration) {
	for _, k := range kinds {
		if dwell > 0 {
			lo, hi = lo+dwell/2, hi+dwell*3/2
			continue
		}
		switch k {
		case StopLoading:
			lo, hi = lo+15*time.Minute, hi+40*time.Minute
		case StopQuality:
			lo, hi = lo+5*time.Minute, hi+15*time.Minute
		case StopUnloading:
			lo, hi = lo+10*time.Minute, hi+30*time.Minute
		}
	}
	return lo, hi
}

// TestAreasDefineStationsTmsAccepts parses every site's station as the
// API would (domain/station's rules).
func TestAreasDefineStationsTmsAccepts(t *testing.T) {
	t.Parallel()
	for name, area := range Areas() {
		a := area()
		if err := a.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen := map[string]bool{}
		for i, site := range a.Sites {
			id := a.StationID(i)
			if seen[id] {
				t.Errorf("%s: station id %s twice", name, id)
			}
			seen[id] = true
			body, err := json.Marshal(siteStation(a, i))
			if err != nil {
				t.Fatal(err)
			}
			st, err := station.Parse(body)
			if err == nil {
				_, err = st.WithID(id)
			}
			if err != nil {
				t.Fatalf("%s: site %q: tms refuses %s as station %s: %v", name, site.Name, body, id, err)
			}
			if st.Type() != string(site.Kind) || st.RadiusM() != a.StationRadius() || st.Name() != site.Name {
				t.Errorf("%s: site %q as station %s: %s, %s, %v m", name, site.Name, id, st.Name(), st.Type(), st.RadiusM())
			}
		}
	}
	if got := Shanghai().StationID(0); got != "sim.shanghai.waigaoqiao-port" {
		t.Errorf("station id of Waigaoqiao port = %q", got)
	}
}

func TestStationIDsThatTmsCouldNotTakeAreRefused(t *testing.T) {
	t.Parallel()
	a := Area{Name: "上海", Lat: 31.2, Lng: 121.4, RadiusKm: 20, Sites: []Site{
		{"港口", SiteLoading, 31.2, 121.4}, {"Gate 3", SiteUnloading, 31.25, 121.5}, {"gate-3", SiteOil, 31.22, 121.45},
	}}
	if err := a.Validate(); err != nil {
		t.Fatalf("names need no letters to drive between: %v", err)
	}
	if got := []string{a.StationID(0), a.StationID(1)}; got[0] != "sim.area.site-0" || got[1] != "sim.area.gate-3" {
		t.Errorf("station ids %v", got)
	}
	if err := a.ValidateStations(); err == nil || !strings.Contains(err.Error(), "one station id, sim.area.gate-3") {
		t.Errorf("two sites with one station id: %v", err)
	}
	a.Sites[2].Name = strings.Repeat("long ", 20)
	if err := a.ValidateStations(); err == nil || !strings.Contains(err.Error(), "longer than 64") {
		t.Errorf("a station id tms refuses: %v", err)
	}
	if _, err := NewFleet(1, 3, a, WithJobs(1)); err == nil {
		t.Error("jobs at stations tms refuses are planned")
	}
}
