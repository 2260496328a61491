package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/g7fake"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

const (
	g7Key    = "e2e-key"
	g7Secret = "e2e-secret-5b1c"
)

// backfillRun is `tms backfill g7 args...` in d's deployment, with env
// on top of its environment.
func backfillRun(ctx context.Context, d *tmsproc.Deployment, env []string, args ...string) *exec.Cmd {
	cmd := d.Command(ctx, append([]string{"backfill", "g7", "--progress", "log"}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// summaryLine returns the figures of plate's line in a backfill's
// summary: fetched, rejected, already in tms, added, pages, requests.
func summaryLine(t *testing.T, out, plate string) []int64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != plate {
			continue
		}
		var n []int64
		for _, s := range f[1:7] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("summary line %q: %v", line, err)
			}
			n = append(n, v)
		}
		return n
	}
	t.Fatalf("no summary line for %s in:\n%s", plate, out)
	return nil
}

// backfilledGap is a vehicle's records as tms.positions holds them after
// a backfill: what the live feed brought (parked 10 minutes, then, more
// than the trip gap later, 3 hours elsewhere), then the drives it missed
// in between, with the backfill's source.
func backfilledGap(t *testing.T, kc *kafka.Config, plate string, start time.Time) []*kgo.Record {
	t.Helper()
	missed := stopAndGo(plate, start.Add(80*time.Minute))
	slices.SortFunc(missed, func(a, b position.Position) int { return a.FixTime.Compare(b.FixTime) })
	var live []position.Position
	for at := start; at.Before(start.Add(10 * time.Minute)); at = at.Add(10 * time.Second) {
		live = append(live, position.Position{Plate: plate, FixTime: at, ReceivedAt: at, Lat: 31.7, Lng: 121.9})
	}
	for at := start.Add(3 * time.Hour); at.Before(start.Add(6 * time.Hour)); at = at.Add(10 * time.Second) {
		live = append(live, position.Position{Plate: plate, FixTime: at, ReceivedAt: at, Lat: 31.6, Lng: 121.8})
	}
	records := fleettest.PositionRecords(t, kc, live)
	for _, p := range missed {
		e, err := p.Event(position.BackfillSource)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		records = append(records, &kgo.Record{Topic: kc.Topic(event.TopicPositions), Key: []byte(plate), Value: v})
	}
	return records
}

// caughtUp waits until every projector has committed all its topics
// hold.
func caughtUp(t *testing.T, d *tmsproc.Deployment) {
	t.Helper()
	tmsproc.Eventually(t, time.Minute, "the projectors at the end of their topics", func() bool { return d.ProjectorsBehind() == "" })
}

// positionSources reads tms.positions whole and returns, per event id,
// how many records carry it, and the sources seen.
func positionSources(t *testing.T, d *tmsproc.Deployment) (ids map[string]int, sources map[string]int) {
	t.Helper()
	name := d.Kafka.Topic(event.TopicPositions)
	end := endOffsets(t, d, event.TopicPositions)
	cl, err := d.Kafka.NewClient("e2e-reader", kgo.ConsumeTopics(name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ids, sources = map[string]int{}, map[string]int{}
	for read := int64(0); read < end; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", read, end, name)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			ids[e.ID]++
			sources[e.Source]++
		})
	}
	return ids, sources
}

// TestBackfillG7 runs `tms backfill g7` against a G7 written in the test
// (internal/g7fake: it checks every signature, pages by 1,000 and
// throttles every 4th request) and a running tms: a wrong secret, a dry
// run, a backfill killed with SIGKILL halfway and resumed, and a rerun.
func TestBackfillG7(t *testing.T) {
	svc := testenv.FromEnv(os.LookupEnv)
	srv := g7fake.New(t, g7Key, g7Secret)
	srv.ThrottleEvery = 4
	d := tmsproc.New(t, svc, binary, "G7_API_BASE_URL="+srv.URL, "G7_API_KEY="+g7Key, "G7_API_SECRET="+g7Secret,
		"G7_API_RATE=1000", "G7_API_BACKOFF=1ms", "G7_API_BACKOFF_MAX=20ms", "TMS_LOG_LEVEL=info")
	d.Start()

	const plateA, plateB = "沪A10001", "沪B20002"
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(40 * 24 * time.Hour)
	// A: a fix every 22 minutes for 40 days (2,600: 3 pages in the first
	// window, 1 in the second), and 3 rows that are not valid fixes.
	trackA := g7fake.Track(from, 2600, 22*time.Minute, 31.2, 121.4)
	srv.Add(plateA, trackA...)
	srv.Add(plateA,
		g7fake.Row{Time: from.Add(time.Hour + time.Second), Raw: json.RawMessage(`{"lng":"121.4","lat":"95","speed":1,"course":0,"time":` + strconv.FormatInt(from.Add(time.Hour+time.Second).UnixMilli(), 10) + `}`)},
		g7fake.Row{Time: from.Add(35 * 24 * time.Hour), Raw: json.RawMessage(`{"lng":"east","lat":"31.2","speed":1,"time":` + strconv.FormatInt(from.Add(35*24*time.Hour).UnixMilli(), 10) + `}`)},
		g7fake.Row{Time: from.Add(36 * 24 * time.Hour), Raw: json.RawMessage(`{"lng":"0","lat":"0","speed":1,"time":` + strconv.FormatInt(from.Add(36*24*time.Hour).UnixMilli(), 10) + `}`)},
	)
	// B: 500 fixes in the first 5 days.
	trackB := g7fake.Track(from, 500, 14*time.Minute, 30.5, 120.5)
	srv.Add(plateB, trackB...)
	rangeArgs := []string{"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
	progressRows := func() int64 { return d.Count(`SELECT count(*) FROM backfill_progress`) }

	t.Run("a wrong secret is a clear error and writes nothing", func(t *testing.T) {
		out, err := backfillRun(t.Context(), d, []string{"G7_API_SECRET=wrong-secret-77aa"},
			append([]string{"--plate", plateA + "," + plateB}, rangeArgs...)...).CombinedOutput()
		if err == nil {
			t.Fatalf("a wrong secret succeeded:\n%s", out)
		}
		for _, want := range []string{"backfill of " + plateA, "code 401", "sub_code invalid_signature", "signature mismatch", "req_id "} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the error does not say %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "wrong-secret-77aa") {
			t.Errorf("the secret is printed:\n%s", out)
		}
		if n := progressRows(); n != 0 {
			t.Errorf("%d progress rows", n)
		}
		if n := endOffsets(t, d, event.TopicPositions) + endOffsets(t, d, event.TopicDeadLetter); n != 0 {
			t.Errorf("%d records written", n)
		}
	})

	t.Run("a dry run counts what it would add and writes nothing", func(t *testing.T) {
		before := len(srv.Requests())
		out, err := backfillRun(t.Context(), d, nil, append([]string{"--dry-run", "--plate", plateA, "--plate", plateB}, rangeArgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if a := summaryLine(t, string(out), plateA); a[0] != 2603 || a[1] != 3 || a[2] != 0 || a[3] != 2600 {
			t.Errorf("%s: fetched, rejected, known, would add %v, want 2603 3 0 2600:\n%s", plateA, a[:4], out)
		}
		if b := summaryLine(t, string(out), plateB); b[0] != 500 || b[3] != 500 {
			t.Errorf("%s: %v:\n%s", plateB, b, out)
		}
		if n := progressRows(); n != 0 {
			t.Errorf("%d progress rows", n)
		}
		if n := endOffsets(t, d, event.TopicPositions) + endOffsets(t, d, event.TopicDeadLetter); n != 0 {
			t.Errorf("%d records written", n)
		}
		// 40 days are 2 windows of at most 31 days.
		windows := map[time.Time]bool{}
		for _, r := range srv.Requests()[before:] {
			if r.Plate != plateA || r.Code != 0 {
				continue
			}
			if r.To.Sub(r.From) > g7fake.Window {
				t.Errorf("a request over 31 days: %s to %s", r.From, r.To)
			}
			windows[r.To] = true
		}
		if len(windows) != 2 {
			t.Errorf("%d windows, want 2", len(windows))
		}
	})

	t.Run("a dry run does not count what tms has", func(t *testing.T) {
		out, err := backfillRun(t.Context(), d, nil, append([]string{"--plate", plateB}, rangeArgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		caughtUp(t, d)
		if n := d.Count(`SELECT count(*) FROM positions WHERE plate = $1`, plateB); n != 500 {
			t.Fatalf("%d positions of %s, want 500", n, plateB)
		}
		out, err = backfillRun(t.Context(), d, nil, append([]string{"--dry-run", "--all-known"}, rangeArgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if b := summaryLine(t, string(out), plateB); b[0] != 500 || b[2] != 500 || b[3] != 0 {
			t.Errorf("%s: fetched, rejected, known, would add %v, want 500 0 500 0:\n%s", plateB, b[:4], out)
		}
		if strings.Contains(string(out), plateA) {
			t.Errorf("--all-known took %s, which tms does not know yet:\n%s", plateA, out)
		}
	})

	t.Run("killed halfway and resumed, each fix once", func(t *testing.T) {
		srv.Hold(2)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		first := backfillRun(ctx, d, nil, append([]string{"--plate", plateA}, rangeArgs...)...)
		var firstOut strings.Builder
		first.Stdout, first.Stderr = &firstOut, &firstOut
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		tmsproc.Eventually(t, time.Minute, "2 pages of "+plateA+" recorded", func() bool {
			return d.Count(`SELECT coalesce(max(pages), 0) FROM backfill_progress WHERE plate = $1`, plateA) >= 2
		})
		if err := first.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = first.Wait()
		// The premise: the run was killed with the range half done.
		var until time.Time
		var completed *time.Time
		if err := d.Pool.QueryRow(t.Context(), `SELECT done_until, completed_at FROM backfill_progress WHERE plate = $1`, plateA).
			Scan(&until, &completed); err != nil {
			t.Fatal(err)
		}
		if completed != nil || !until.After(from) || !until.Before(to) {
			t.Fatalf("not killed halfway: done until %s, completed %v\n%s", until, completed, firstOut.String())
		}
		srv.Release()
		out, err := backfillRun(t.Context(), d, nil, append([]string{"--plate", plateA}, rangeArgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		t.Logf("the rerun:\n%s", out)
		if !strings.Contains(string(out), "resumed from "+until.UTC().Format(time.RFC3339Nano)) {
			t.Errorf("the rerun does not say it resumed from %s:\n%s", until.UTC().Format(time.RFC3339Nano), out)
		}
		if a := summaryLine(t, string(out), plateA); a[1] != 3 || a[3] != 2600 {
			t.Errorf("%s: rejected %d, added %d, want 3 and 2600:\n%s", plateA, a[1], a[3], out)
		}
		caughtUp(t, d)
		// Each fix once in the history, at its time and place.
		if n := d.Count(`SELECT count(*) FROM positions WHERE plate = $1`, plateA); n != 2600 {
			t.Errorf("%d positions of %s, want 2600", n, plateA)
		}
		if n := d.Count(`SELECT positions_count FROM vehicles WHERE plate = $1`, plateA); n != 2600 {
			t.Errorf("vehicles counts %d fixes of %s, want 2600", n, plateA)
		}
		rows, err := d.Pool.Query(t.Context(), `SELECT fix_time, lat FROM positions WHERE plate = $1 ORDER BY fix_time`, plateA)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for rows.Next() {
			var at time.Time
			var lat float64
			if err := rows.Scan(&at, &lat); err != nil {
				t.Fatal(err)
			}
			if i < len(trackA) && !at.Equal(trackA[i].Time) {
				t.Fatalf("fix %d at %s, want %s", i, at, trackA[i].Time)
			}
			i++
		}
		rows.Close()
		// On the topic: the ids live fixes would have, with the backfill's
		// source; a fix's records beyond one can only be a page sent again
		// after a kill between Kafka's ack and the progress record.
		ids, sources := positionSources(t, d)
		for _, r := range trackA {
			id := event.ID(event.TypePositionReported, plateA, r.Time.UTC().Format(time.RFC3339Nano))
			if ids[id] == 0 {
				t.Fatalf("no record with the live id of %s's fix at %s", plateA, r.Time)
			}
		}
		if len(ids) != 3100 || sources["/tms/backfill/g7"] > 3100+1000 || len(sources) != 1 {
			t.Errorf("%d ids (want 3100), sources %v", len(ids), sources)
		}
		_, letters, _ := topicRecords(t, d, event.TopicDeadLetter)
		if len(letters) != 3 {
			t.Errorf("%d dead letters, want 3", len(letters))
		}
	})

	t.Run("a range done is not fetched again", func(t *testing.T) {
		before := len(srv.Requests())
		out, err := backfillRun(t.Context(), d, nil, append([]string{"--plate", plateA}, rangeArgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if !strings.Contains(string(out), "already done") || len(srv.Requests()) != before {
			t.Errorf("%d requests:\n%s", len(srv.Requests())-before, out)
		}
	})

	t.Run("a backfilled gap reaches replays and trips", func(t *testing.T) {
		const plateC = "沪C30003"
		base := from.Add(48 * time.Hour)
		type fix struct {
			at            time.Time
			lat, lng, kmh float64
		}
		var track []fix
		at := base
		park := func(d time.Duration, lat, lng float64) {
			for end := at.Add(d); at.Before(end); at = at.Add(10 * time.Second) {
				track = append(track, fix{at, lat, lng, 0})
			}
		}
		drive := func(d time.Duration, lat, lng0, lng1 float64) {
			n := int(d / (10 * time.Second))
			for i := 1; i <= n; i++ {
				track = append(track, fix{at, lat, lng0 + (lng1-lng0)*float64(i)/float64(n), 40})
				at = at.Add(10 * time.Second)
			}
		}
		const lat, p0, depot, p2 = 31.2, 121.4, 121.4314, 121.4628
		park(10*time.Minute, lat, p0) // live
		morning := len(track)
		drive(5*time.Minute, lat, p0, depot) // missed by the live feed
		park(20*time.Minute, lat, depot)
		drive(5*time.Minute, lat, depot, p2)
		park(70*time.Minute, lat, p2)
		afternoon := len(track)
		park(3*time.Hour, lat, p2) // live again
		for _, f := range track {
			srv.Add(plateC, g7fake.Fix(f.at, f.lat, f.lng, f.kmh, 90))
		}
		// What the live feed brought, as ingest writes it.
		cl, err := d.Kafka.NewClient("e2e-live")
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var live []*kgo.Record
		for _, f := range append(append([]fix{}, track[:morning]...), track[afternoon:]...) {
			p := position.Position{Plate: plateC, FixTime: f.at, ReceivedAt: f.at, Lat: f.lat, Lng: f.lng, SpeedKmh: f.kmh}
			e, err := p.Event("/tms/ingest/g7")
			if err != nil {
				t.Fatal(err)
			}
			v, _ := json.Marshal(e)
			live = append(live, &kgo.Record{Topic: d.Kafka.Topic(event.TopicPositions), Key: []byte(plateC), Value: v})
		}
		if err := cl.ProduceSync(t.Context(), live...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, d)
		if status, body := call(t, d, http.MethodPost, "/api/v1/stations",
			`{"id":"BFS","name":"Backfill depot","type":"loading","geometry":{"type":"Point","coordinates":[121.4314,31.2]},"radius_m":300}`, nil); status != http.StatusCreated && status != http.StatusOK {
			t.Fatalf("create the station: %d %s", status, body)
		}
		dayArgs := []string{"--plate", plateC, "--from", base.Format(time.RFC3339), "--to", base.Add(24 * time.Hour).Format(time.RFC3339)}
		out, err := backfillRun(t.Context(), d, nil, dayArgs...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		missed := int64(afternoon - morning)
		if c := summaryLine(t, string(out), plateC); c[2] != int64(len(live)) || c[3] != missed {
			t.Errorf("%s: known %d, added %d, want %d and %d:\n%s", plateC, c[2], c[3], len(live), missed, out)
		}
		caughtUp(t, d)

		// Trips: the gap's two drives, from the backfilled fixes.
		window := "?" + url.Values{"from": {base.Format(time.RFC3339)}, "to": {base.Add(24 * time.Hour).Format(time.RFC3339)}, "limit": {"100"}}.Encode()
		var list struct{ Trips []apiTrip }
		if status := d.Get("/api/v1/vehicles/"+url.PathEscape(plateC)+"/trips"+window, &list); status != http.StatusOK {
			t.Fatalf("trips: %d", status)
		}
		gapFrom, gapTo := track[morning].at, track[afternoon-1].at
		var inGap []apiTrip
		for _, tr := range list.Trips {
			if !tr.Start.Time.Before(gapFrom.Add(-time.Minute)) && !tr.End.Time.After(gapTo) {
				inGap = append(inGap, tr)
			}
		}
		if len(inGap) != 2 || inGap[0].Distance < 2500 || inGap[1].Distance < 2500 {
			t.Errorf("trips in the backfilled gap: %+v (all: %+v), want the two 3 km drives", inGap, list.Trips)
		}

		// Replay: the station, created after the fact, applied to the
		// range: the visit the backfilled fixes make.
		id := runReplay(t, d, "BFS", base, base.Add(24*time.Hour))
		visits := replayVisits(t, d, id, 100)
		entered := track[morning].at.Add(5*time.Minute - 10*time.Second)
		if len(visits) != 1 || visits[0].Vehicle != plateC || visits[0].ExitedAt == nil ||
			visits[0].EnteredAt.Before(entered.Add(-time.Minute)) || visits[0].EnteredAt.After(entered.Add(time.Minute)) ||
			visits[0].ExitedAt.Sub(visits[0].EnteredAt) < 19*time.Minute || len(visits[0].EntryFlags)+len(visits[0].ExitFlags) != 0 {
			t.Errorf("replayed visits %v, want %s's visit entered about %s for 20 minutes, unflagged", visits, plateC, entered)
		}
	})
}
