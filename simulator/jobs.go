package simulator

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// StopKind is what a job's stop is for, named as tms names it.
type StopKind string

// The kinds of stop a planned job has.
const (
	StopLoading   StopKind = "loading"
	StopQuality   StopKind = "quality"
	StopUnloading StopKind = "unloading"
)

// MaxJobs bounds the jobs of one fleet: each is a request to the API.
const MaxJobs = 100_000

// Job planning. A dispatcher gives a truck work near where it is: a
// loading site among the nearest few, drops among the unloading sites
// nearest the loading.
const (
	// nearLoading is how many of the nearest loading sites a job's
	// loading site is drawn from.
	nearLoading = 3
	// nearUnloading is how many of the unloading sites nearest the
	// loading site its drops are drawn from.
	nearUnloading = 4
	// qualityChance is how often the load is checked at the loading site
	// before the truck leaves (a quality stop at the same station).
	qualityChance = 0.3
	// twoDropsChance is how often a job has a second unloading stop.
	twoDropsChance = 0.4
	// Cargo weights, kg, in steps of cargoStepKg.
	minCargoKg, maxCargoKg, cargoStepKg = 5_000, 40_000, 100
)

// cargoes describe what a job carries.
var cargoes = []string{"containers", "steel coils", "auto parts", "electronics", "building materials", "groceries", "chemicals (non-hazardous)", "paper rolls"}

// jobStreamBase is the first random stream of the jobs: job k draws from
// stream jobStreamBase+k, apart from the vehicles' streams 0..n-1 and the
// encoder's, so that job k is the same whatever the number of jobs.
const jobStreamBase = 1 << 62

// Job is one job of the fleet: a vehicle's trip over stops, as tms is
// asked to plan it (POST /api/v1/jobs) and as the fleet then drives it.
type Job struct {
	// Index is the job's number, 0 to n-1.
	Index int
	// ExternalRef names the job for tms: sim:<area>:<seed>:<index>. It is
	// stable for the seed and the area, so that creating the jobs again
	// (a second run) finds the ones created before.
	ExternalRef string
	// Vehicle is the index of the vehicle that drives it, in Plates'
	// order, and Plate its plate.
	Vehicle int
	Plate   string
	// Stops, in order: a loading stop, sometimes a quality check at the
	// same site, then one or two unloading stops at other sites.
	Stops []JobStop
	// CargoKg is the load's weight and Cargo what it is.
	CargoKg float64
	Cargo   string
}

// JobStop is one stop of a Job.
type JobStop struct {
	// Site is the index of the site in the area's Sites, and StationID
	// the id of its station (Area.StationID).
	Site      int
	StationID string
	Kind      StopKind
}

// plannedJob is a job as its vehicle drives it: its visits, consecutive
// stops at one site being served by one visit (a loading and a quality
// check), as tms serves them.
type plannedJob struct {
	visits []jobVisit
}

// jobVisit is one stay at a site, for one or more stops.
type jobVisit struct {
	site  int
	kinds []StopKind
}

// FleetOption tunes a fleet as NewFleet makes it.
type FleetOption func(*fleetOptions)

type fleetOptions struct {
	dwell time.Duration
	jobs  int
}

// WithDwell makes every stay at a site last d×[0.5, 1.5) (each stop of a
// job's visit as long, so a loading with a quality check twice that)
// instead of the minutes a site's kind takes (loading 15-40, unloading
// 10-30, oil 3-8, a quality check 5-15). A short one makes a demo or a
// test in real time go quickly.
func WithDwell(d time.Duration) FleetOption { return func(o *fleetOptions) { o.dwell = d } }

// WithJobs gives the fleet n jobs (see Fleet.Jobs): job k goes to vehicle
// k mod the fleet's size, so the first n vehicles have one each and, with
// more jobs than vehicles, some have several, driven one after the
// other. A vehicle with jobs sets out for its first at the first Step,
// goes straight from one job to the next, and returns to its work cycle
// after its last; parked for good it is not. The other vehicles drive
// as they would without jobs.
func WithJobs(n int) FleetOption { return func(o *fleetOptions) { o.jobs = n } }

// Jobs lists the fleet's jobs, in order of their index.
func (f *Fleet) Jobs() []Job { return slices.Clone(f.jobs) }

// planJobs plans n jobs and puts their vehicles on them. Job k draws
// from its own stream; where its vehicle is when it starts (its start,
// or the last site of its previous job) decides what is near.
func (f *Fleet) planJobs(seed uint64, n int) error {
	if n == 0 {
		return nil
	}
	if len(f.byKind[SiteLoading]) == 0 || len(f.byKind[SiteUnloading]) == 0 {
		return fmt.Errorf("simulator: area %q: jobs need loading and unloading sites", f.area.Name)
	}
	if err := f.area.ValidateStations(); err != nil {
		return err // the jobs' stops name the stations
	}
	f.jobs = make([]Job, n)
	for k := range f.jobs {
		vi := k % len(f.vehicles)
		v := &f.vehicles[vi]
		rnd := rand.New(rand.NewPCG(seed, jobStreamBase+uint64(k)))
		from, at := v.site, v.pos
		if len(v.jobs) > 0 {
			last := v.jobs[len(v.jobs)-1].visits
			from = last[len(last)-1].site
			at = f.sites[from]
		}
		j := Job{
			Index:       k,
			ExternalRef: fmt.Sprintf("sim:%s:%d:%d", slug(f.area.Name), seed, k),
			Vehicle:     vi,
			Plate:       v.plate,
			CargoKg:     float64(minCargoKg + cargoStepKg*rnd.IntN((maxCargoKg-minCargoKg)/cargoStepKg+1)),
			Cargo:       cargoes[rnd.IntN(len(cargoes))],
		}
		loading := f.near(rnd, at, SiteLoading, nearLoading, from)
		plan := &plannedJob{visits: []jobVisit{{site: loading, kinds: []StopKind{StopLoading}}}}
		j.Stops = append(j.Stops, f.stop(loading, StopLoading))
		if rnd.Float64() < qualityChance {
			plan.visits[0].kinds = append(plan.visits[0].kinds, StopQuality)
			j.Stops = append(j.Stops, f.stop(loading, StopQuality))
		}
		drops := 1
		if rnd.Float64() < twoDropsChance {
			drops = 2
		}
		used := []int{loading}
		for range min(drops, len(f.byKind[SiteUnloading])) {
			u := f.near(rnd, f.sites[loading], SiteUnloading, nearUnloading, used...)
			used = append(used, u)
			plan.visits = append(plan.visits, jobVisit{site: u, kinds: []StopKind{StopUnloading}})
			j.Stops = append(j.Stops, f.stop(u, StopUnloading))
		}
		f.jobs[k] = j
		v.jobs = append(v.jobs, plan)
	}
	for i := range f.vehicles {
		if v := &f.vehicles[i]; len(v.jobs) > 0 {
			f.startJob(v)
		}
	}
	return nil
}

func (f *Fleet) stop(site int, kind StopKind) JobStop {
	return JobStop{Site: site, StationID: f.area.StationID(site), Kind: kind}
}

// near draws one of the `among` sites of kind nearest to p, leaving out
// the sites of except when others are left.
func (f *Fleet) near(rnd *rand.Rand, p point, kind SiteKind, among int, except ...int) int {
	var cands []int
	for _, s := range f.byKind[kind] {
		if !slices.Contains(except, s) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		cands = f.byKind[kind]
	}
	dist := func(s int) float64 { return point{f.sites[s].x - p.x, f.sites[s].y - p.y}.norm() }
	cands = slices.Clone(cands)
	slices.SortStableFunc(cands, func(a, b int) int { return cmp.Compare(dist(a), dist(b)) })
	return cands[rnd.IntN(min(among, len(cands)))]
}

// startJob sets v out for its next job's first visit: at once from where
// it is (a stay is cut short, a leg turned towards the new site at the
// speed it drives), or, when it already stands at that site, by staying
// for the visit.
func (f *Fleet) startJob(v *vehicle) {
	v.parked, v.onJob, v.stop = false, true, 0
	target := v.jobs[0].visits[0].site
	switch {
	case !v.driving && v.site == target:
		v.dwell = f.visitDwell(v)
	case v.driving && v.site == target:
	default:
		f.legTo(v, target, v.driving)
	}
}

// visitDwell draws the stay of v's current job visit, in seconds: one
// stay per stop it serves.
func (f *Fleet) visitDwell(v *vehicle) float64 {
	total := 0.0
	for _, k := range v.jobs[0].visits[v.stop].kinds {
		total += f.stay(v, string(k))
	}
	return total
}
