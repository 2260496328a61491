package geofence_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/testenv"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

// produceInTransactions writes records in transactions of n, committed,
// so that every partition ends with a commit marker; aborted records
// are written, in a transaction of their own that is aborted, before
// the last one.
func produceInTransactions(t *testing.T, kc *kafka.Config, records []*kgo.Record, n int, aborted []*kgo.Record) {
	t.Helper()
	cl, err := kc.NewClient("test-txn", kgo.TransactionalID(testenv.Name("txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	txn := func(commit bool, rs []*kgo.Record) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(t.Context(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	for len(records) > n {
		txn(true, records[:n])
		records = records[n:]
	}
	txn(false, aborted)
	txn(true, records)
}

// replayed renders transitions per vehicle, in order, for comparison.
func replayed(ts []geofence.Transition) map[string][]string {
	out := map[string][]string{}
	for _, tr := range ts {
		out[tr.Vehicle] = append(out[tr.Vehicle], tr.String()+" "+tr.InitialCause)
	}
	return out
}

// TestReplay replays a station over positions that a transactional
// producer wrote (so each partition ends with a transaction marker, and
// one transaction is aborted), with a metrics registry as tms runs it,
// and compares the transitions with a fresh tracker's that knows only the
// station, as it stands now, valid for all time, and sees the fixes of
// the range in order.
func TestReplay(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	kc.Registerer = prometheus.NewRegistry()
	w := fleettest.New(t, 8, 100)
	// LOAD moves: the replay applies its current version to the whole range.
	w.Upsert(t, `{"id":"LOAD","name":"Quarry","type":"loading","geometry":{"type":"Point","coordinates":[121.000,31.015]},"radius_m":500}`,
		2, fleettest.T0.Add(5*time.Minute))
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	// A fix in LOAD that was never committed: no replay may see it.
	ghost := position.Position{Plate: "沪G99999", FixTime: fleettest.T0.Add(4 * time.Minute), Lat: 31.015, Lng: 121.0}
	produceInTransactions(t, kc, fleettest.PositionRecords(t, kc, w.Fixes), 150, fleettest.PositionRecords(t, kc, []position.Position{ghost}))

	from, to := fleettest.T0.Add(2*time.Minute), fleettest.T0.Add(9*time.Minute)
	current := w.Changes[len(w.Changes)-1].Station.Geofence(2)
	catalog := geofence.NewCatalog(geofence.NewBruteForce())
	if err := catalog.Upsert(current, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tracker, err := geofence.NewTracker(config(), catalog)
	if err != nil {
		t.Fatal(err)
	}
	var want []geofence.Transition
	var fixes int64
	vehicles := map[string]*geofence.Vehicle{}
	for _, p := range w.Fixes {
		if p.FixTime.Before(from) || !p.FixTime.Before(to) {
			continue
		}
		fixes++
		if vehicles[p.Plate] == nil {
			vehicles[p.Plate] = geofence.NewVehicle(geofence.VehicleState{Plate: p.Plate})
		}
		want = tracker.Observe(vehicles[p.Plate], geofence.Fix{Time: p.FixTime, Point: geo.Point{Lat: p.Lat, Lng: p.Lng}}, want)
	}
	for _, v := range vehicles {
		want = tracker.Flush(v, want)
	}
	if len(want) < 20 {
		t.Fatalf("the world makes only %d transitions in the range", len(want))
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var got []geofence.Transition
	var found []geofence.Station
	res, err := pipeline.Replay(ctx, pipeline.ReplayConfig{
		Kafka: kc, Geofence: config(), StationID: "LOAD", From: from, To: to,
		Found: func(s geofence.Station) error {
			if len(got) > 0 {
				t.Error("Found was called after transitions")
			}
			found = append(found, s)
			return nil
		},
	}, func(tr geofence.Transition) error { got = append(got, tr); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Version != 2 || res.Station.Version != 2 || res.FixesRead != fixes {
		t.Errorf("found %+v, result %+v; want LOAD version 2 found once, %d fixes read", found, res, fixes)
	}
	g, wt := replayed(got), replayed(want)
	for plate, w := range wt {
		if strings.Join(g[plate], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: got\n  %s\nwant\n  %s", plate, strings.Join(g[plate], "\n  "), strings.Join(w, "\n  "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d transitions, want %d (vehicles %d, want %d)", len(got), len(want), len(g), len(wt))
	}

	t.Run("refusals", func(t *testing.T) {
		w := fleettest.New(t, 1, 1)
		w.Delete("HAZ", 2, fleettest.T0)
		fleettest.Produce(t, kc, w.StationRecords(t, kc)[len(w.Changes)-1:])
		for _, c := range []struct {
			station  string
			from, to time.Time
			want     error
		}{
			{"NOPE", from, to, pipeline.ErrNoSuchStation},
			{"HAZ", from, to, pipeline.ErrNoSuchStation},
			{"LOAD", to, from, nil},
			{"LOAD", from, from, nil},
		} {
			_, err := pipeline.Replay(ctx, pipeline.ReplayConfig{
				Kafka: kc, Geofence: config(), StationID: c.station, From: c.from, To: c.to,
				Found: func(geofence.Station) error { t.Errorf("%s: found", c.station); return nil },
			}, func(geofence.Transition) error { t.Errorf("%s: a transition", c.station); return nil })
			bad := err == nil
			if c.want != nil {
				bad = bad || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.station)
			}
			if bad {
				t.Errorf("%s [%s, %s): err = %v, want %v naming it", c.station, c.from, c.to, err, c.want)
			}
		}
	})

	t.Run("an error from Found ends the replay", func(t *testing.T) {
		stop := errors.New("no room for the run")
		_, err := pipeline.Replay(ctx, pipeline.ReplayConfig{
			Kafka: kc, Geofence: config(), StationID: "LOAD", From: from, To: to,
			Found: func(geofence.Station) error { return stop },
		}, func(geofence.Transition) error { t.Error("a transition after Found failed"); return nil })
		if !errors.Is(err, stop) {
			t.Errorf("err = %v, want %v", err, stop)
		}
	})
}
