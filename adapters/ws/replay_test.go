package ws_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// The recorded hour: one vehicle driving east along latitude 31.2 at a
// constant speed from t0, a fix every 10 s (360 fixes), so that where it
// was at any time is known exactly: lng = 121 + s * 1e-5 at s seconds.
// It visits stations, one of them a hazard zone, between fixes and at
// fixes, and serves a job of two stops.
const (
	hourPlate = "沪R00001"
	hourFixes = 360
	fixStep   = 10 // seconds
	// jobID is the recorded job: started at 1:00, its first stop served
	// by the visit of S1, its second by the visit of S3, completed at
	// 55:00.
	jobID = "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0a11"
	// longJobID is a job whose window (3 h) is longer than the hour.
	longJobID = "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0a12"
	// queuedJobID never started.
	queuedJobID = "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0a13"
	// tripID is a trip of the recorded hour, from the fix of 20:00 to
	// the fix of 50:00; openTripID the trip under way from the fix of
	// 55:00, whose last fix the read model has taken is that of 56:40.
	tripID     = "5b0e6f1a-3c2d-4e8f-9a1b-0c2d3e4f5a61"
	openTripID = "5b0e6f1a-3c2d-4e8f-9a1b-0c2d3e4f5a62"
	// tripsNow is the clock of the trips' windows: the open trip runs to
	// it, past the last fix the read model has taken.
	tripsNow = 3595
)

func lngAt(s float64) float64 { return 121 + s*1e-5 }

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// hourVisit is a visit of the recorded hour, in seconds from t0; exited
// < 0 is a visit still open.
type hourVisit struct {
	id, station, kind string
	entered, exited   float64
}

var hourVisits = []hourVisit{
	// Entered before the hour, left between the fixes of 2:00 and 2:10.
	{"00000000-0000-0000-0000-0000000000a0", "S0", "loading", -300, 125},
	// Entered between the fixes of 10:00 and 10:10, left at the fix of 20:00.
	{"00000000-0000-0000-0000-0000000000a1", "S1", "loading", 605, 1200},
	// A hazard zone entered at the fix of 30:00, left between fixes.
	{"00000000-0000-0000-0000-0000000000a2", "H1", "hazard", 1800, 2000.5},
	// Entered between fixes, left at the fix of 55:00.
	{"00000000-0000-0000-0000-0000000000a3", "S3", "unloading", 3003, 3300},
}

// recordHour writes the recorded hour into the read models, as the
// projections would have.
func recordHour(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// positions is partitioned by month: a bulk writer makes the months first.
	if _, err := vehicles.EnsurePartitions(ctx, pool, vehicles.PositionsTable, t0, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags)
		SELECT $1, $2::timestamptz + make_interval(secs => s), $2::timestamptz + make_interval(secs => s + 1),
		       31.2, 121 + s * 1e-5, 3.6, 90, '{}'
		FROM generate_series(0, $3::int - 1) AS i, LATERAL (SELECT (i * $4)::float8 AS s) x`,
		hourPlate, t0, hourFixes, fixStep)
	for _, v := range hourVisits {
		var exited *time.Time
		var dwell *float64
		if v.exited >= 0 {
			exited, dwell = ptr(sec(v.exited)), ptr(v.exited-v.entered)
		}
		exec(`INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version, entered_at, exited_at, dwell_s)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $7)`, v.id, hourPlate, v.station, v.kind, sec(v.entered), exited, dwell)
	}
	stop := func(i int, station, kind string, arrived, departed float64) job.StopProgress {
		return job.StopProgress{Index: i, PlannedStop: job.PlannedStop{StationID: station, Kind: kind, StationName: station,
			Point: job.Point{Lat: 31.2, Lng: 121}}, Status: job.StopDeparted, ArrivedAt: ptr(sec(arrived)),
			DepartedAt: ptr(sec(departed)), DwellS: ptr(departed - arrived), Flags: []string{}}
	}
	stops := []job.StopProgress{stop(0, "S1", job.KindLoading, 605, 1200), stop(1, "S3", job.KindUnloading, 3003, 3300)}
	completion := job.Completion{JobID: jobID, Vehicle: hourPlate, Revision: 1, StartedAt: sec(60), CompletedAt: sec(3300),
		DurationS: 3240, Stops: stops}
	stopsJSON, _ := json.Marshal(stops)
	completionJSON, _ := json.Marshal(completion)
	exec(`INSERT INTO jobs (id, vehicle, status, cargo, stops, created_at, started_at, completed_at, revision, completion, updated_at)
		VALUES ($1, $2, 'completed', '{"weight_kg": 20000}', $3, $4, $5, $6, 1, $7, $6)`,
		jobID, hourPlate, string(stopsJSON), sec(-600), sec(60), sec(3300), string(completionJSON))
	long := []job.StopProgress{stop(0, "S0", job.KindLoading, -3*3600+60, 0)}
	longJSON, _ := json.Marshal(long)
	exec(`INSERT INTO jobs (id, vehicle, status, cargo, stops, created_at, started_at, updated_at)
		VALUES ($1, $2, 'active', '{"weight_kg": 1}', $3, $4, $4, $4)`, longJobID, "沪R00002", string(longJSON), sec(-3*3600))
	exec(`INSERT INTO jobs (id, vehicle, status, cargo, stops, created_at, updated_at)
		VALUES ($1, $2, 'queued', '{"weight_kg": 1}', '[]', $3, $3)`, queuedJobID, "沪R00003", sec(0))
	for _, tr := range []struct {
		id       string
		from, to float64
		open     bool
	}{{tripID, 1200, 3000, false}, {openTripID, 3300, 3400, true}} {
		exec(`INSERT INTO trips (id, vehicle, start_time, start_lat, start_lng, end_time, end_lat, end_lng, open,
			distance_m, max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m, revision)
			VALUES ($1, $2, $3, 31.2, $4, $5, 31.2, $6, $7, 0, 3.6, $8, 0, $9, $9, 0, 0, 1)`,
			tr.id, hourPlate, sec(tr.from), lngAt(tr.from), sec(tr.to), lngAt(tr.to), tr.open, tr.to-tr.from,
			int((tr.to-tr.from)/fixStep)+1)
	}
	return pool
}

// step is one item of a timeline as a test expects it: its type and time.
type step struct {
	typ string
	at  time.Time
}

func (s step) String() string {
	return fmt.Sprintf("%s@%v", strings.TrimSuffix(strings.TrimPrefix(s.typ, "tms."), ".v1"), s.at.Sub(t0))
}

// expectedHour is the recorded hour's timeline over [from, to), in the
// documented order: by time, and at equal times the position, exits,
// entries (each followed by its alert), then job events (started, stop
// departures, stop arrivals, completion).
func expectedHour(from, to time.Time) []step {
	type ranked struct {
		step
		rank int
		key  string
	}
	var all []ranked
	add := func(typ string, s float64, rank int, key string) {
		all = append(all, ranked{step{typ, sec(s)}, rank, key})
	}
	for i := range hourFixes {
		add(event.TypePositionReported, float64(i*fixStep), 0, "")
	}
	for _, v := range hourVisits {
		add(event.TypeEnteredStation, v.entered, 2, v.id)
		if v.kind == "hazard" {
			add(event.TypeAlertRaised, v.entered, 3, v.id)
		}
		if v.exited >= 0 {
			add(event.TypeExitedStation, v.exited, 1, v.id)
		}
	}
	add(event.TypeJobCreated, -600, 4, "")
	add(event.TypeJobStarted, 60, 5, "")
	add(event.TypeJobStopArrived, 605, 7, "0")
	add(event.TypeJobStopDeparted, 1200, 6, "0")
	add(event.TypeJobStopArrived, 3003, 7, "1")
	add(event.TypeJobStopDeparted, 3300, 6, "1")
	add(event.TypeJobCompleted, 3300, 8, "")
	slices.SortStableFunc(all, func(a, b ranked) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.rank, b.rank), strings.Compare(a.key, b.key))
	})
	var out []step
	for _, r := range all {
		if !r.at.Before(from) && r.at.Before(to) {
			out = append(out, r.step)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// replayHarness is a hub that replays the recorded hour from Postgres.
func replayHarness(t *testing.T, cfg ws.Config, opts ...harnessOpt) (*harness, *pgxpool.Pool) {
	t.Helper()
	pool := recordHour(t)
	if cfg.History == nil {
		cfg.History = timeline.NewStore(pool)
	}
	cfg.Jobs = timeline.JobWindows{Jobs: jobs.NewStore(pool)}
	cfg.Trips = timeline.TripWindows{Trips: trips.NewStore(pool), Now: func() time.Time { return sec(tripsNow) }}
	return newHarness(t, cfg, opts...), pool
}

// received is a frame and when it arrived.
type received struct {
	frame
	at time.Time
}

// readReplay reads the frames of replay id until its replay_ended, and
// returns its replay frames (as they arrived) and its end. Frames of
// other kinds are returned in others. It is safe to call from any
// goroutine: it returns what is wrong rather than failing the test.
func readReplay(c *wsClient, id string) (frames []received, others []frame, ended frame, err error) {
	for {
		f, err := c.read()
		if err != nil {
			return frames, others, ended, err
		}
		switch {
		case f.Type == ws.FrameReplay && f.ReplayID == id:
			frames = append(frames, received{f, time.Now()})
		case f.Type == ws.FrameReplayEnded && f.ReplayID == id:
			return frames, others, f, nil
		default:
			others = append(others, f)
		}
	}
}

// startReplay sends a replay and reads its replay_started.
func (c *wsClient) startReplay(body string) frame {
	c.t.Helper()
	c.send(`{"replay": ` + body + `}`)
	return c.nextOf(ws.FrameReplayStarted)
}

// checkTimeline checks that frames carry want, in order, each marked as
// a replay frame of id with replay_seq 1, 2, 3...
func checkTimeline(t *testing.T, id string, frames []received, want []step) {
	t.Helper()
	var got []step
	for i, f := range frames {
		if f.ReplayID != id || f.ReplaySeq != int64(i+1) || f.Event == nil {
			t.Fatalf("replay frame %d: %s, want replay %s, replay_seq %d, an event", i, f.raw, id, i+1)
		}
		got = append(got, step{f.Event.Type, f.Event.Time})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d events, want %d:\n%v\nwant\n%v", len(got), len(want), got, want)
	}
}

// checkPlaces checks that every station and job event lies between the
// fixes around it in the stream, in time and in place: on the recorded
// hour's straight line, where the vehicle was at its time.
func checkPlaces(t *testing.T, frames []received) {
	t.Helper()
	placed := 0
	for i, f := range frames {
		e := f.Event
		if e.Type == event.TypePositionReported || e.Type == event.TypeJobStarted || e.Type == event.TypeJobCompleted {
			continue
		}
		var d struct {
			Lat, Lng *float64
			At       *job.Point `json:"at"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.At != nil {
			d.Lat, d.Lng = &d.At.Lat, &d.At.Lng
		}
		if d.Lat == nil || d.Lng == nil {
			t.Errorf("%s at %s has no place", e.Type, e.Time)
			continue
		}
		var before, after *event.Envelope
		for j := i - 1; j >= 0 && before == nil; j-- {
			if frames[j].Event.Type == event.TypePositionReported {
				before = frames[j].Event
			}
		}
		for j := i + 1; j < len(frames) && after == nil; j++ {
			if frames[j].Event.Type == event.TypePositionReported {
				after = frames[j].Event
			}
		}
		// At the end of a window, an event at the last fix has none after
		// it in the stream.
		if before == nil || e.Time.Before(before.Time) || (after == nil && !e.Time.Equal(before.Time)) ||
			(after != nil && e.Time.After(after.Time)) {
			t.Errorf("%s at %s is not between the fixes around it (%v, %v)", e.Type, e.Time, before, after)
			continue
		}
		want := lngAt(e.Time.Sub(t0).Seconds())
		if math.Abs(*d.Lng-want) > 2e-7 || *d.Lat != 31.2 {
			t.Errorf("%s at %s placed at (%v, %v), want (31.2, %v)", e.Type, e.Time, *d.Lat, *d.Lng, want)
		}
		placed++
	}
	if placed == 0 {
		t.Error("no station or job event was placed")
	}
}

// TestReplayRecordedHourAtSpeed60 replays the recorded hour at speed 60
// to two clients at once: each receives every position, station event and
// job event in event-time order, each marked as a replay frame, the
// station events at their places, paced: no frame before its time (its
// event time since the first, divided by 60, from replay_started), the
// last (at 59:50) not before 59.8 s and within half a minute of it.
func TestReplayRecordedHourAtSpeed60(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{})
	from, to := t0, t0.Add(time.Hour)
	want := expectedHour(from, to)

	type run struct {
		started      time.Time
		id           string
		frames       []received
		others       []frame
		ended        frame
		err          error
		finished     time.Time
		startedFrame frame
	}
	runs := make([]run, 2)
	done := make(chan int, len(runs))
	clients := make([]*wsClient, len(runs))
	for i := range runs {
		clients[i] = h.dial(t)
	}
	for i := range runs {
		c := clients[i]
		c.send(fmt.Sprintf(`{"replay": {"vehicle": %q, "from": %q, "to": %q, "speed": 60}}`,
			hourPlate, from.Format(time.RFC3339), to.Format(time.RFC3339)))
		go func() {
			r := &runs[i]
			defer func() { done <- i }()
			f, err := c.read()
			if err != nil || f.Type != ws.FrameReplayStarted {
				r.err = fmt.Errorf("first frame %s, %v; want replay_started", f.raw, err)
				return
			}
			r.started, r.id, r.startedFrame = time.Now(), f.ReplayID, f
			r.frames, r.others, r.ended, r.err = readReplay(c, r.id)
			r.finished = time.Now()
		}()
	}
	for range runs {
		<-done
	}
	for i, r := range runs {
		t.Run(fmt.Sprintf("client %d", i+1), func(t *testing.T) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			s := r.startedFrame
			if s.Vehicle != hourPlate || !s.From.Equal(from) || !s.To.Equal(to) || s.Speed != 60 || r.id == "" {
				t.Errorf("replay_started %s", s.raw)
			}
			if len(r.others) > 0 {
				t.Errorf("frames other than the replay's: %v", r.others)
			}
			checkTimeline(t, r.id, r.frames, want)
			checkPlaces(t, r.frames)
			if r.ended.Reason != "completed" || r.ended.Frames != int64(len(want)) {
				t.Errorf("replay_ended %s, want completed after %d frames", r.ended.raw, len(want))
			}
			first := r.frames[0].Event.Time
			for _, f := range r.frames {
				due := time.Duration(float64(f.Event.Time.Sub(first)) / 60)
				if got := f.at.Sub(r.started); got < due-250*time.Millisecond {
					t.Fatalf("the event of %s arrived %s after the start, before its time (%s at speed 60)", f.Event.Time, got, due)
				}
			}
			last := r.frames[len(r.frames)-1].at.Sub(r.started)
			ideal := time.Duration(float64(want[len(want)-1].at.Sub(first)) / 60)
			if last < 55*time.Second || last > ideal+30*time.Second {
				t.Errorf("the hour took %s at speed 60, want about %s (55 s at least, %s at most)", last, ideal, ideal+30*time.Second)
			}
			t.Logf("client %d: %d frames; the last after %s (ideal %s)", i+1, len(r.frames), last, ideal)
		})
	}
	// Both ran at once: each started before the other finished.
	if runs[0].started.After(runs[1].finished) || runs[1].started.After(runs[0].finished) {
		t.Errorf("the replays did not overlap: %v..%v and %v..%v", runs[0].started, runs[0].finished, runs[1].started, runs[1].finished)
	}
}

// TestReplayPauseSeekSpeed drives one replay with every control: a pause
// holds it (nothing arrives while paused, and it resumes where it was,
// with no event lost and replay_seq without a gap); speed changes its
// pace; seek moves it forward and back to the first event at or after
// the time sought; stop ends it, after which it is gone.
func TestReplayPauseSeekSpeed(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{})
	from, to := t0, t0.Add(time.Hour)
	want := expectedHour(from, to)
	indexOf := func(f frame) int {
		s := step{f.Event.Type, f.Event.Time}
		i := slices.Index(want, s)
		if i < 0 {
			t.Fatalf("replayed %v, not in the recorded hour", s)
		}
		return i
	}
	c := h.dial(t)
	started := c.startReplay(fmt.Sprintf(`{"id": "analyst-1", "vehicle": %q, "from": %q, "to": %q, "speed": 60}`,
		hourPlate, from.Format(time.RFC3339), to.Format(time.RFC3339)))
	id := started.ReplayID
	if id != "analyst-1" {
		t.Fatalf("replay_started %s, want the id the client gave", started.raw)
	}
	var last frame
	for range 30 {
		last = c.nextOf(ws.FrameReplay)
	}
	// next reads the control's answer, taking the replay frames before it
	// (queued before the control) as the last seen.
	answer := func(typ string) frame {
		t.Helper()
		for {
			f := c.next()
			if f.Type != ws.FrameReplay {
				if f.Type != typ || f.ReplayID != id {
					t.Fatalf("frame %s, want %s of %s", f.raw, typ, id)
				}
				return f
			}
			if f.ReplaySeq != last.ReplaySeq+1 {
				t.Fatalf("replay_seq %d after %d", f.ReplaySeq, last.ReplaySeq)
			}
			last = f
		}
	}

	t.Run("pause", func(t *testing.T) {
		c.send(`{"pause": "` + id + `"}`)
		paused := answer(ws.FrameReplayState)
		if paused.State != "paused" || paused.Speed != 60 || paused.At.Before(last.Event.Time) || paused.At.After(to) {
			t.Fatalf("replay_state %s after the event of %s", paused.raw, last.Event.Time)
		}
		// The pause under test: at speed 60, nine events are due in 1.5 s.
		time.Sleep(1500 * time.Millisecond)
		c.send(`{"speed": {"id": "` + id + `", "speed": 600}}`)
		if f := c.next(); f.Type != ws.FrameReplayState || f.State != "paused" || f.Speed != 600 || !f.At.Equal(paused.At) {
			t.Fatalf("frame %s after 1.5 s paused, want the speed's replay_state, still paused where it was", f.raw)
		}
		c.send(`{"resume": "` + id + `"}`)
		if f := c.next(); f.Type != ws.FrameReplayState || f.State != "playing" {
			t.Fatalf("frame %s, want replay_state playing", f.raw)
		}
		next := c.nextOf(ws.FrameReplay)
		if next.ReplaySeq != last.ReplaySeq+1 || indexOf(next) != indexOf(last)+1 {
			t.Fatalf("after the pause: %s, want the event after %v with replay_seq %d", next.raw, step{last.Event.Type, last.Event.Time}, last.ReplaySeq+1)
		}
		last = next
	})

	t.Run("speed", func(t *testing.T) {
		// At 600, the next 60 events (600 s of the hour) take a second,
		// not the ten they take at 60.
		begin := time.Now()
		first := last
		for range 60 {
			f := c.nextOf(ws.FrameReplay)
			if f.ReplaySeq != last.ReplaySeq+1 || indexOf(f) != indexOf(last)+1 {
				t.Fatalf("%s after %s", f.raw, last.raw)
			}
			last = f
		}
		took := time.Since(begin)
		span := last.Event.Time.Sub(first.Event.Time)
		if ideal := time.Duration(float64(span) / 600); took < ideal-250*time.Millisecond || took > time.Duration(float64(span)/60)/2 {
			t.Errorf("%s of the hour took %s at speed 600, want about %s", span, took, ideal)
		}
	})

	t.Run("seek forward", func(t *testing.T) {
		target := t0.Add(45 * time.Minute)
		c.send(fmt.Sprintf(`{"seek": {"id": %q, "to": %q}}`, id, target.Format(time.RFC3339)))
		state := answer(ws.FrameReplayState)
		if !state.At.Equal(target) || state.State != "playing" || state.Speed != 600 {
			t.Fatalf("replay_state %s, want playing at %s", state.raw, target)
		}
		next := c.nextOf(ws.FrameReplay)
		if next.ReplaySeq != last.ReplaySeq+1 || next.Event.Type != event.TypePositionReported || !next.Event.Time.Equal(target) {
			t.Fatalf("after seeking to %s: %s (after replay_seq %d)", target, next.raw, last.ReplaySeq)
		}
		last = next
	})

	t.Run("seek back", func(t *testing.T) {
		target := t0.Add(10 * time.Minute)
		c.send(fmt.Sprintf(`{"seek": {"id": %q, "to": %q}}`, id, target.Format(time.RFC3339)))
		answer(ws.FrameReplayState)
		i := slices.Index(want, step{event.TypePositionReported, target})
		for _, w := range want[i : i+4] { // the fix of 10:00, the entry at 10:05 and its job arrival, the fix of 10:10
			f := c.nextOf(ws.FrameReplay)
			if f.ReplaySeq != last.ReplaySeq+1 || (step{f.Event.Type, f.Event.Time}) != w {
				t.Fatalf("after seeking back: %s, want %v", f.raw, w)
			}
			last = f
		}
	})

	t.Run("seek out of the window", func(t *testing.T) {
		c.send(fmt.Sprintf(`{"seek": {"id": %q, "to": %q}}`, id, to.Format(time.RFC3339)))
		for {
			f := c.next()
			if f.Type == ws.FrameReplay {
				last = f
				continue
			}
			if f.Type != ws.FrameError || f.Field != "to" || f.ReplayID != id || !strings.Contains(f.Detail, "window") {
				t.Fatalf("frame %s, want an error naming to", f.raw)
			}
			break
		}
	})

	t.Run("stop", func(t *testing.T) {
		c.send(`{"stop": "` + id + `"}`)
		var ended frame
		for {
			f := c.next()
			if f.Type == ws.FrameReplay {
				last = f
				continue
			}
			ended = f
			break
		}
		if ended.Type != ws.FrameReplayEnded || ended.Reason != "stopped" || ended.Frames != last.ReplaySeq {
			t.Fatalf("frame %s, want replay_ended stopped after %d frames", ended.raw, last.ReplaySeq)
		}
		c.send(`{"pause": "` + id + `"}`)
		if f := c.next(); f.Type != ws.FrameError || f.Field != "pause" || f.ReplayID != id {
			t.Fatalf("frame %s, want an error: the replay is gone", f.raw)
		}
	})
}

// TestReplayOfAJob replays a job over its window (its start to its
// completion, both included), fast.
func TestReplayOfAJob(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{})
	c := h.dial(t)
	started := c.startReplay(`{"job": "` + jobID + `", "speed": 1000}`)
	if started.Vehicle != hourPlate || !started.From.Equal(sec(60)) || !started.To.Equal(sec(3300).Add(time.Microsecond)) {
		t.Fatalf("replay_started %s, want the job's window", started.raw)
	}
	frames, others, ended, err := readReplay(c, started.ReplayID)
	if err != nil {
		t.Fatal(err)
	}
	if len(others) > 0 || ended.Reason != "completed" {
		t.Fatalf("frames %v, end %s", others, ended.raw)
	}
	checkTimeline(t, started.ReplayID, frames, expectedHour(sec(60), sec(3300).Add(time.Microsecond)))
	checkPlaces(t, frames)
}

// TestReplayOfATrip replays a trip over its window (its start to its
// end, both included): exactly its positions, with the station and job
// events between them. A trip under way is replayed to now, past the last
// fix the trips read model has taken.
func TestReplayOfATrip(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{})
	for _, tc := range []struct {
		name, id string
		from, to float64
	}{{"ended", tripID, 1200, 3000}, {"under way", openTripID, 3300, tripsNow}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := h.dial(t)
			started := c.startReplay(`{"trip": "` + tc.id + `", "speed": 1000}`)
			from, to := sec(tc.from), sec(tc.to).Add(time.Microsecond)
			if started.Vehicle != hourPlate || !started.From.Equal(from) || !started.To.Equal(to) {
				t.Fatalf("replay_started %s, want the trip's window [%s, %s)", started.raw, from, to)
			}
			frames, others, ended, err := readReplay(c, started.ReplayID)
			if err != nil {
				t.Fatal(err)
			}
			if len(others) > 0 || ended.Reason != "completed" {
				t.Fatalf("frames %v, end %s", others, ended.raw)
			}
			checkTimeline(t, started.ReplayID, frames, expectedHour(from, to))
			checkPlaces(t, frames)
			var fixes []time.Time
			for _, f := range frames {
				if f.Event.Type == event.TypePositionReported {
					fixes = append(fixes, f.Event.Time)
				}
			}
			// Every fix from the first to the last second of the window,
			// and no other.
			var want []time.Time
			for s := math.Ceil(tc.from/fixStep) * fixStep; s <= tc.to; s += fixStep {
				want = append(want, sec(s))
			}
			if !slices.EqualFunc(fixes, want, time.Time.Equal) {
				t.Fatalf("replayed the positions %v, want the trip's %d from %v to %v", fixes, len(want),
					want[0].Sub(t0), want[len(want)-1].Sub(t0))
			}
		})
	}
}

// TestReplayKeepsApartFromTheLiveFeed: a connection's live subscription
// and its replays are independent. A subscribed client gets the live
// event as an event frame and the replayed ones as replay frames; a
// client that only replays gets no live event.
func TestReplayKeepsApartFromTheLiveFeed(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{})
	window := fmt.Sprintf(`"vehicle": %q, "from": %q, "to": %q, "speed": 1000`,
		hourPlate, t0.Format(time.RFC3339), t0.Add(10*time.Minute).Format(time.RFC3339))
	live := pos(t, "沪L00001", time.Now(), 31.2, 121.5)

	both := h.dial(t)
	both.subscribe(`{"vehicles": ["沪L00001"]}`, true)
	only := h.dial(t)
	s1 := both.startReplay(`{` + window + `}`)
	s2 := only.startReplay(`{` + window + `}`)
	h.hub.Publish(live)

	for _, tc := range []struct {
		name   string
		c      *wsClient
		id     string
		events int
	}{{"subscribed", both, s1.ReplayID, 1}, {"replay only", only, s2.ReplayID, 0}} {
		frames, others, ended, err := readReplay(tc.c, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		checkTimeline(t, tc.id, frames, expectedHour(t0, t0.Add(10*time.Minute)))
		if ended.Reason != "completed" {
			t.Errorf("%s: %s", tc.name, ended.raw)
		}
		if tc.events == 0 {
			// Anything live would have been queued by now: it comes
			// before the answer to a subscribe.
			tc.c.send(`{"subscribe": {"vehicles": ["沪Z99999"]}}`)
			others = append(others, tc.c.next())
		}
		var events []string
		for _, f := range others {
			if f.Type == ws.FrameEvent {
				events = append(events, f.Event.ID)
			}
		}
		if len(events) != tc.events || (tc.events == 1 && events[0] != live.ID) {
			t.Errorf("%s: live events %v, want %d (%s)", tc.name, events, tc.events, live.ID)
		}
	}
}

// countingSource counts the rows a replay has read.
type countingSource struct {
	timeline.Source
	fixes atomic.Int64
}

func (s *countingSource) Track(ctx context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error) {
	out, err := s.Source.Track(ctx, q)
	s.fixes.Add(int64(len(out)))
	return out, err
}

// TestReplayIsPacedByItsClient replays the hour at speed 1000 (3.6 s) to
// a client that does not read. The replay waits for room instead of
// reading on: it has read far fewer fixes than the hour's when it waits,
// the hub holds at most half its byte limit for the client, and the
// client is not closed as too slow. When the client reads, it gets every
// event, none dropped. (Reading them takes some 8 s: the socket buffers
// this test shrinks to stall the connection leave TCP a few frames per
// round trip.)
func TestReplayIsPacedByItsClient(t *testing.T) {
	t.Parallel()
	pool := recordHour(t)
	src := &countingSource{Source: timeline.NewStore(pool)}
	const limit = 256 << 10
	h := newHarness(t, ws.Config{History: src, ReplayPageRows: 10, MaxPendingBytes: limit}, smallSocketBuffers())
	c := h.dial(t, smallReadBuffer())
	c.send(fmt.Sprintf(`{"replay": {"vehicle": %q, "from": %q, "to": %q, "speed": 1000}}`,
		hourPlate, t0.Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339)))
	tmsproc.Eventually(t, readGuard, "the replay waits for its client", func() bool { return ws.ReplaysWaiting(h.hub) == 1 })
	read := src.fixes.Load()
	if read >= hourFixes/2 {
		t.Errorf("the replay read %d fixes for a client that reads nothing, want far fewer than the hour's %d", read, hourFixes)
	}
	if peak := h.metric(t, "tms_ws_client_held_bytes_peak"); peak > limit/2+4<<10 {
		t.Errorf("the hub held %v bytes for the client, more than half its limit of %d", peak, limit)
	}
	begin := time.Now()
	started := c.nextOf(ws.FrameReplayStarted)
	frames, _, ended, err := readReplay(c, started.ReplayID)
	t.Logf("read in %s; frames at %s, %s, %s", time.Since(begin), frames[0].at.Sub(begin), frames[len(frames)/2].at.Sub(begin), frames[len(frames)-1].at.Sub(begin))
	if err != nil {
		t.Fatal(err)
	}
	checkTimeline(t, started.ReplayID, frames, expectedHour(t0, t0.Add(time.Hour)))
	if ended.Reason != "completed" || h.metric(t, "tms_ws_clients_closed_slow_total") != 0 {
		t.Errorf("replay_ended %s, clients closed slow %v", ended.raw, h.metric(t, "tms_ws_clients_closed_slow_total"))
	}
	t.Logf("waiting for its client, the replay had read %d of %d fixes", read, hourFixes)
}

// TestReplayLimits: every limit answers with an error frame naming the
// field at fault and the limit, and the replays in force go on.
func TestReplayLimits(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{MaxReplaysPerConnection: 2, MaxReplaysPerCaller: 3, MaxReplays: 4,
		MaxReplaySpeed: 100, MaxReplayRange: 2 * time.Hour}, byCallerHeader())
	// A replay at speed 1 runs for the hour: long past the test.
	slow := fmt.Sprintf(`{"vehicle": %q, "from": %q, "to": %q}`,
		hourPlate, t0.Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339))
	// The replays started run on meanwhile: a frame of theirs (the hour's
	// first fix goes at once) may come before the answer awaited.
	answer := func(c *wsClient) frame {
		t.Helper()
		f := c.next()
		for f.Type == ws.FrameReplay {
			f = c.next()
		}
		return f
	}
	refused := func(c *wsClient, body, field, detail string) {
		t.Helper()
		c.send(`{"replay": ` + body + `}`)
		f := answer(c)
		if f.Type != ws.FrameError || f.Field != field || !strings.Contains(f.Detail, detail) {
			t.Fatalf("%s: frame %s, want an error of %s saying %q", body, f.raw, field, detail)
		}
	}
	a := h.dialAs(t, "token-a")
	a1 := a.startReplay(slow)
	a.startReplay(slow)
	refused(a, slow, "replay", "this connection has 2 replays running, the most one connection may")
	b := h.dialAs(t, "token-a")
	b.startReplay(slow)
	refused(b, slow, "replay", "this token has 3 replays running, the most one token may")
	c := h.dialAs(t, "token-c")
	c.startReplay(slow)
	refused(c, slow, "replay", "the server is running 4 replays, the most it runs at once")
	if got := h.metric(t, "tms_ws_replays"); got != 4 {
		t.Errorf("tms_ws_replays %v, want 4", got)
	}
	// A replay stopped gives its place back as soon as it has ended.
	a.send(`{"stop": "` + a1.ReplayID + `"}`)
	if f := answer(a); f.Type != ws.FrameReplayEnded || f.ReplayID != a1.ReplayID || f.Reason != "stopped" {
		t.Fatalf("replay_ended %s", f.raw)
	}
	c.startReplay(slow)

	d := h.dialAs(t, "token-d")
	refused(d, fmt.Sprintf(`{"vehicle": %q, "from": %q, "to": %q, "speed": 101}`, hourPlate,
		t0.Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339)), "speed", "from 1 to 100")
	refused(d, fmt.Sprintf(`{"vehicle": %q, "from": %q, "to": %q}`, hourPlate,
		t0.Format(time.RFC3339), t0.Add(3*time.Hour).Format(time.RFC3339)), "to", "the window spans 3.00 h, more than the 2.00 h a replay may")
	refused(d, `{"job": "`+longJobID+`"}`, "job", "more than the 2.00 h a replay may")
	refused(d, `{"job": "`+queuedJobID+`"}`, "job", "has not started")
	refused(d, `{"job": "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0aff"}`, "job", "there is no job")
	refused(d, `{"trip": "T1"}`, "trip", "there is no trip T1")
	refused(d, `{"trip": "5b0e6f1a-3c2d-4e8f-9a1b-0c2d3e4f5aff"}`, "trip", "there is no trip")
	refused(d, `{"id": "mine", "trip": "T1", "job": "J1"}`, "job", "give one of vehicle, trip and job")
	d.send(`{"seek": {"id": "r9", "to": "2025-03-01T08:00:00Z"}}`)
	if f := d.next(); f.Type != ws.FrameError || f.Field != "seek" || f.ReplayID != "r9" || !strings.Contains(f.Detail, "no replay r9") {
		t.Fatalf("frame %s, want an error: no replay r9", f.raw)
	}
	if got := h.metric(t, "tms_ws_replays_refused_total"); got != 3 {
		t.Errorf("tms_ws_replays_refused_total %v, want 3", got)
	}

	t.Run("without history", func(t *testing.T) {
		h := newHarness(t, ws.Config{})
		c := h.dial(t)
		c.send(`{"replay": ` + slow + `}`)
		if f := c.next(); f.Type != ws.FrameError || f.Field != "replay" || !strings.Contains(f.Detail, "does not replay history") {
			t.Fatalf("frame %s", f.raw)
		}
	})
}

// TestReplayStopsWithItsConnection: a client that goes away gives its
// replays' places back.
func TestReplayStopsWithItsConnection(t *testing.T) {
	t.Parallel()
	h, _ := replayHarness(t, ws.Config{MaxReplays: 1, MaxReplaysPerCaller: 1})
	slow := fmt.Sprintf(`{"vehicle": %q, "from": %q, "to": %q}`,
		hourPlate, t0.Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339))
	a := h.dial(t)
	a.startReplay(slow)
	_ = a.conn.Close()
	tmsproc.Eventually(t, readGuard, "the closed connection's replay ends", func() bool {
		return h.metric(t, "tms_ws_replays") == 0
	})
	h.dial(t).startReplay(slow)
}
