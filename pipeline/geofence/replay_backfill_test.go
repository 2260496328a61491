package geofence_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/testenv"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

// TestReplayIncludesBackfilledFixes: a vehicle's history has a gap that
// `tms backfill g7` filled after the vehicle's later fixes were in the
// topic, so its backfilled fixes come after newer ones. The replay takes
// them in fix-time order and finds the visit they make; the same fixes
// arriving late from the live feed keep the live late-fix policy (no
// decided visit), as the live geofence made of them.
func TestReplayIncludesBackfilledFixes(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	w := fleettest.New(t, 0, 0)
	w.Upsert(t, `{"id":"BF","name":"Depot","type":"loading","geometry":{"type":"Point","coordinates":[121.3,31.3]},"radius_m":300}`,
		1, fleettest.T0.Add(-time.Hour))
	fleettest.Produce(t, kc, w.StationRecords(t, kc))

	t0 := fleettest.T0
	fixes := func(plate string, from, to time.Time, lat, lng float64) []position.Position {
		var out []position.Position
		for at := from; at.Before(to); at = at.Add(10 * time.Second) {
			out = append(out, position.Position{Plate: plate, FixTime: at, ReceivedAt: at, Lat: lat, Lng: lng, SpeedKmh: 20})
		}
		return out
	}
	records := func(source string, ps []position.Position) []*kgo.Record {
		var out []*kgo.Record
		for _, p := range ps {
			e, err := p.Event(source)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := json.Marshal(e)
			out = append(out, &kgo.Record{Topic: kc.Topic(event.TopicPositions), Key: []byte(p.Plate), Value: v})
		}
		return out
	}
	const backfilled, live = "沪K00001", "沪K00002"
	var rs []*kgo.Record
	for _, plate := range []string{backfilled, live} {
		// What the live feed brought: before and after the gap, away.
		rs = append(rs, records("/tms/ingest/g7", fixes(plate, t0, t0.Add(10*time.Minute), 31.2, 121.2))...)
		rs = append(rs, records("/tms/ingest/g7", fixes(plate, t0.Add(3*time.Hour), t0.Add(3*time.Hour+10*time.Minute), 31.2, 121.2))...)
	}
	gap := func(plate string) []position.Position {
		return slices.Concat(fixes(plate, t0.Add(time.Hour), t0.Add(80*time.Minute), 31.25, 121.25),
			fixes(plate, t0.Add(80*time.Minute), t0.Add(100*time.Minute), 31.3, 121.3),
			fixes(plate, t0.Add(100*time.Minute), t0.Add(2*time.Hour), 31.25, 121.25))
	}
	// The gap, afterwards: backfilled for one vehicle, late from the feed
	// for the other.
	rs = append(rs, records(position.BackfillSource, gap(backfilled))...)
	rs = append(rs, records("/tms/ingest/g7", gap(live))...)
	fleettest.Produce(t, kc, rs)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var got []geofence.Transition
	res, err := pipeline.Replay(ctx, pipeline.ReplayConfig{Kafka: kc, Geofence: config(), StationID: "BF", From: t0, To: t0.Add(4 * time.Hour)},
		func(tr geofence.Transition) error { got = append(got, tr); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if res.Reordered != 1 || res.FixesRead != int64(2*(60+60+360)) {
		t.Errorf("result %+v: want 1 vehicle reordered, %d fixes read", res, 2*(60+60+360))
	}
	byVehicle := replayed(got)
	var decided []geofence.Transition
	for _, tr := range got {
		if tr.Vehicle == backfilled {
			decided = append(decided, tr)
		}
		if tr.Vehicle == live && !slices.Contains(tr.Flags, "late") {
			t.Errorf("a live late fix made a decided transition in the replay: %s", tr)
		}
	}
	if len(decided) != 2 || decided[0].Kind != geofence.Entered || !decided[0].At.Equal(t0.Add(80*time.Minute)) ||
		decided[1].Kind != geofence.Exited || !decided[1].At.Equal(t0.Add(100*time.Minute)) ||
		len(decided[0].Flags)+len(decided[1].Flags) != 0 {
		t.Errorf("the backfilled gap's visit: got\n  %v\nwant an entry at %s and an exit at %s, unflagged", byVehicle[backfilled],
			t0.Add(80*time.Minute), t0.Add(100*time.Minute))
	}

	t.Run("the fixes held are bounded", func(t *testing.T) {
		_, err := pipeline.Replay(ctx, pipeline.ReplayConfig{Kafka: kc, Geofence: config(), StationID: "BF", From: t0, To: t0.Add(4 * time.Hour),
			MaxReorderedFixes: 100}, func(geofence.Transition) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "TMS_REPLAY_MAX_REORDERED_FIXES") {
			t.Errorf("err = %v", err)
		}
	})
}
