package schemas

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/jobsim"
)

// jobT0 is when the job scenario begins; not a whole second, so that the
// times carry milliseconds.
var jobT0 = time.Date(2026, 12, 1, 6, 0, 0, 125_000_000, time.UTC)

// jobStations: a quarry (loading, with its quality check on the same
// site), two building sites and a yard, a few kilometres apart; the
// second site given in GCJ-02 and converted, as the API would.
var jobStations = map[string]job.Station{
	"QUARRY-1": {ID: "QUARRY-1", Name: "North quarry", Type: "loading", Point: job.Point{Lat: 31.1, Lng: 121.3}},
	"SITE-1":   {ID: "SITE-1", Name: "Tower site", Type: "unloading", Point: job.Point{Lat: 31.15, Lng: 121.35}},
	"SITE-2":   {ID: "SITE-2", Name: "工地二号", Type: "unloading", Point: fromGCJ(31.2, 121.4)},
}

func fromGCJ(lat, lng float64) job.Point {
	w := geo.GCJ02ToWGS84(geo.Point{Lat: lat, Lng: lng})
	return job.Point{Lat: w.Lat, Lng: w.Lng}
}

func stationPoint(id string) geo.Point {
	p := jobStations[id].Point
	return geo.Point{Lat: p.Lat, Lng: p.Lng}
}

// jobEvents drives a vehicle through three jobs with domain/job's rules
// and returns every record it would put on tms.jobs, commands included:
//   - A (external reference, planned arrival, cargo description): the
//     vehicle waits in the quarry when it is created (inside_at_start),
//     loads and has the load checked in one visit, drops at two sites,
//     and fixes it held back on the way arrive after the completion
//     settled, which amends it;
//   - B (no reference), queued behind A, started when A settles, then
//     cancelled after its loading;
//   - C, queued behind B, cancelled while queued.
func jobEvents(t *testing.T) []event.Envelope {
	t.Helper()
	d := jobsim.New("沪A12345", job.DefaultRules, jobStations, jobT0, stationPoint("QUARRY-1"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const every = 5 * time.Second
	d.Enter("QUARRY-1", "initial")
	d.Park(time.Minute, every)
	planned := jobT0.Add(time.Minute)
	_, err := d.CreateRequest(job.CreateRequest{Vehicle: "沪A12345", ExternalRef: "ORD-2026-0001",
		Cargo: job.Cargo{WeightKg: 24_500.5, Description: "crushed stone 20-40"},
		Stops: []job.StopRequest{
			{StationID: "QUARRY-1", Kind: job.KindLoading, PlannedArrival: &planned},
			{StationID: "QUARRY-1", Kind: job.KindQuality},
			{StationID: "SITE-1", Kind: job.KindUnloading},
			{StationID: "SITE-2", Kind: job.KindUnloading},
		}}, "")
	must(err)
	// (Jobs created at the same millisecond would be queued in the order
	// of their ids, not of their commands: a few seconds apart, as a
	// dispatcher would.)
	d.Park(2*every, every)
	b, err := d.Create("", event.ID("schemas test", "job B"), job.Cargo{WeightKg: 30_000}, "QUARRY-1:loading", "SITE-1:unloading")
	must(err)
	d.Park(2*every, every)
	c, err := d.Create("ORD-2026-0003", "", job.Cargo{WeightKg: 12_000}, "QUARRY-1:loading", "SITE-2:unloading")
	must(err)
	d.Park(10*time.Minute, every)
	d.Exit("QUARRY-1", "gap")
	// Half way to the first site, the device loses coverage for a while
	// (and takes a detour the completion will not know of at first).
	mid := geo.Point{Lat: 31.125, Lng: 121.33}
	d.Drive(mid, 50, every)
	d.Hold()
	d.Drive(geo.Point{Lat: 31.14, Lng: 121.31}, 50, every)
	d.Resume()
	d.Drive(stationPoint("SITE-1"), 50, every)
	d.Enter("SITE-1")
	d.Park(15*time.Minute, every)
	d.Exit("SITE-1")
	d.Drive(stationPoint("SITE-2"), 60, every)
	d.Enter("SITE-2")
	d.Park(20*time.Minute, every)
	d.Exit("SITE-2", "station_changed")
	d.Drive(stationPoint("SITE-1"), 60, every) // A settles on the way, and B starts
	d.Release()
	must(d.Cancel(c.JobID, "the customer called it off"))
	d.Drive(stationPoint("QUARRY-1"), 60, every)
	d.Enter("QUARRY-1")
	d.Park(8*time.Minute, every)
	d.Exit("QUARRY-1")
	d.Drive(mid, 50, every)
	must(d.Cancel(b.JobID, "the site is closed"))
	d.Park(time.Minute, every)
	return d.Records
}

func TestJobEventsAndCommandsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	records := jobEvents(t)
	schemas := schemaOf{}
	seen := map[string]int{}
	var shapes []string
	for _, e := range records {
		seen[e.Type]++
		if err := validate(t, schemas.get(t, e.Type), e); err != nil {
			t.Errorf("%s %s: %v", e.Type, e.Data, err)
		}
		var d struct {
			Status      string
			WasStatus   string `json:"was_status"`
			ExternalRef string `json:"external_ref"`
			Flags       []string
			Stops       []struct {
				PlannedArrival string `json:"planned_arrival"`
			}
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		shapes = append(shapes, e.Type+" "+d.Status+d.WasStatus)
		if slices.Contains(d.Flags, job.FlagInsideAtStart) {
			shapes = append(shapes, "inside_at_start")
		}
		if len(d.Stops) > 0 && d.Stops[0].PlannedArrival != "" {
			shapes = append(shapes, "planned_arrival")
		}
		if d.ExternalRef == "" {
			shapes = append(shapes, "no external_ref")
		}
	}
	for _, typ := range []string{event.TypeJobCreated, event.TypeJobStarted, event.TypeJobStopArrived, event.TypeJobStopDeparted,
		event.TypeJobCompleted, event.TypeJobAmended, event.TypeJobCancelled, job.TypeCreateJob, job.TypeCancelJob} {
		if seen[typ] == 0 {
			t.Errorf("no %s was checked", typ)
		}
	}
	for _, shape := range []string{"tms.job.created.v1 active", "tms.job.created.v1 queued", "tms.job.cancelled.v1 queued",
		"tms.job.cancelled.v1 active", "inside_at_start", "planned_arrival", "no external_ref"} {
		if !slices.Contains(shapes, shape) {
			t.Errorf("the scenario made no %s", shape)
		}
	}
	t.Logf("%d records: %v", len(records), seen)
}

// TestJobSchemasRejectWhatTheContractForbids guards the job schemas: each
// case breaks one rule of the contract.
func TestJobSchemasRejectWhatTheContractForbids(t *testing.T) {
	t.Parallel()
	first := map[string]event.Envelope{}
	for _, e := range jobEvents(t) {
		if _, ok := first[e.Type]; !ok {
			first[e.Type] = e
		}
	}
	created, completed, amended := first[event.TypeJobCreated], first[event.TypeJobCompleted], first[event.TypeJobAmended]
	arrived, departed, cancelled := first[event.TypeJobStopArrived], first[event.TypeJobStopDeparted], first[event.TypeJobCancelled]
	create, cancel, started := first[job.TypeCreateJob], first[job.TypeCancelJob], first[event.TypeJobStarted]
	stop0 := func(d map[string]any) map[string]any { return d["stops"].([]any)[0].(map[string]any) }
	cases := map[string]event.Envelope{
		"a completion of revision 2":         mutated(t, completed, func(d map[string]any) { d["revision"] = 2 }),
		"a completion saying why amended":    mutated(t, completed, func(d map[string]any) { d["amended_because"] = "late_fixes" }),
		"an amendment not saying why":        mutated(t, amended, func(d map[string]any) { delete(d, "amended_because") }),
		"an amendment of revision 1":         mutated(t, amended, func(d map[string]any) { d["revision"] = 1 }),
		"an amendment for another reason":    mutated(t, amended, func(d map[string]any) { d["amended_because"] = "whim" }),
		"a completion with a pending stop":   mutated(t, completed, func(d map[string]any) { stop0(d)["status"] = "pending" }),
		"a completion without distances":     mutated(t, completed, func(d map[string]any) { delete(d, "distance_m") }),
		"a negative loaded distance":         mutated(t, completed, func(d map[string]any) { d["distance_m"].(map[string]any)["loaded"] = -1 }),
		"a fractional fix count":             mutated(t, completed, func(d map[string]any) { d["noise"].(map[string]any)["fixes_used"] = 1.5 }),
		"an unknown field in a completion":   mutated(t, completed, func(d map[string]any) { d["price"] = 12 }),
		"a leg without its driven distance":  mutated(t, completed, func(d map[string]any) { delete(d["legs"].([]any)[0].(map[string]any), "driven_m") }),
		"a departed stop without its dwell":  mutated(t, completed, func(d map[string]any) { delete(stop0(d), "dwell_s") }),
		"a created job with an arrived stop": mutated(t, created, func(d map[string]any) { stop0(d)["status"] = "arrived" }),
		"a created job that is done":         mutated(t, created, func(d map[string]any) { d["status"] = "completed" }),
		"a job id that is not a UUID":        mutated(t, created, func(d map[string]any) { d["job_id"] = "job-1" }),
		"no cargo weight":                    mutated(t, created, func(d map[string]any) { d["cargo"] = map[string]any{} }),
		"a weight of 0":                      mutated(t, created, func(d map[string]any) { d["cargo"] = map[string]any{"weight_kg": 0} }),
		"an empty external reference":        mutated(t, created, func(d map[string]any) { d["external_ref"] = "" }),
		"a stop of an unknown kind":          mutated(t, created, func(d map[string]any) { stop0(d)["kind"] = "refuel" }),
		"one stop":                           mutated(t, created, func(d map[string]any) { d["stops"] = d["stops"].([]any)[:1] }),
		"a time with nanoseconds":            mutated(t, started, func(d map[string]any) { d["started_at"] = "2026-12-01T06:00:00.123456789Z" }),
		"a time with an offset":              mutated(t, started, func(d map[string]any) { d["started_at"] = "2026-12-01T14:00:00+08:00" }),
		"an arrival without its visit":       mutated(t, arrived, func(d map[string]any) { delete(d, "visit_id") }),
		"an arrival with a departure":        mutated(t, arrived, func(d map[string]any) { d["departed_at"] = d["arrived_at"] }),
		"an arrival with an unknown flag":    mutated(t, arrived, func(d map[string]any) { d["flags"] = []string{"late"} }),
		"an arrival that is departed":        mutated(t, arrived, func(d map[string]any) { d["status"] = "departed" }),
		"a departure without where":          mutated(t, departed, func(d map[string]any) { delete(d, "at") }),
		"a departure without its dwell":      mutated(t, departed, func(d map[string]any) { delete(d, "dwell_s") }),
		"a cancellation without a reason":    mutated(t, cancelled, func(d map[string]any) { d["reason"] = "" }),
		"a cancellation of a completed job":  mutated(t, cancelled, func(d map[string]any) { d["was_status"] = "completed" }),
		"a create command with a status":     mutated(t, create, func(d map[string]any) { d["status"] = "active" }),
		"a create command's stop progressed": mutated(t, create, func(d map[string]any) { stop0(d)["status"] = "pending" }),
		"a cancel command without a reason":  mutated(t, cancel, func(d map[string]any) { delete(d, "reason") }),
		"a job event without its subject":    func() event.Envelope { e := completed; e.Subject = ""; return e }(),
		"an envelope time with nanoseconds": func() event.Envelope {
			e := completed
			e.Time = e.Time.Add(time.Nanosecond)
			return e
		}(),
	}
	schemas := schemaOf{}
	for name, e := range cases {
		if validate(t, schemas.get(t, e.Type), e) == nil {
			t.Errorf("%s: accepted %s", name, e.Data)
		}
	}
	wrongType := completed
	wrongType.Type = event.TypeJobAmended
	if validate(t, schemas.get(t, event.TypeJobCompleted), wrongType) == nil {
		t.Error("the completed schema accepted another type")
	}
}
