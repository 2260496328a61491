package ws_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// TestSnapshotFromPostgres takes snapshots from the real read model.
func TestSnapshotFromPostgres(t *testing.T) {
	t.Parallel()
	dbURL := testenv.FromEnv(os.LookupEnv).Postgres(t)
	pool, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	_, err = pool.Exec(t.Context(), `
		INSERT INTO vehicles (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags,
		                      first_seen, last_seen, positions_count)
		VALUES ('沪A00001', $1, $2, 31.20, 121.50, 42.5, 90,   '{}',             $1, $2, 10),
		       ('沪A00002', $1, $2, 31.30, 121.60, 0,    NULL, '{interpolated}', $1, $2, 3),
		       ('京B00003', $1, $2, 39.90, 116.40, 60,   180,  '{}',             $1, $2, 7),
		       ('ZK00004',  $1, $2, -40.0, 175.00, 10,   NULL, '{}',             $1, $2, 1),
		       ('ZK00005',  $1, $2, -41.0, -175.0, 10,   NULL, '{}',             $1, $2, 1)`,
		t0, t0.Add(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, ws.Config{Snapshot: vehicles.NewStore(pool)})

	for _, tc := range []struct {
		name      string
		subscribe string
		want      []string
	}{
		{"everything", `{}`, []string{"ZK00004", "ZK00005", "京B00003", "沪A00001", "沪A00002"}},
		{"bbox", `{"bbox": [121, 31, 122, 32]}`, []string{"沪A00001", "沪A00002"}},
		{"bbox across the antimeridian", `{"bbox": [170, -50, -170, -30]}`, []string{"ZK00004", "ZK00005"}},
		{"vehicles", `{"vehicles": ["沪a00002", "京B00003", "沪A09999"]}`, []string{"京B00003", "沪A00002"}},
		{"vehicles and bbox", `{"vehicles": ["沪A00002", "京B00003"], "bbox": [121, 31, 122, 32]}`, []string{"沪A00002"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			_, snap := c.subscribe(tc.subscribe, true)
			var got []string
			for _, v := range snap.Vehicles {
				got = append(got, v.Plate)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("snapshot of %s, want %s", got, tc.want)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		c := h.dial(t)
		_, snap := c.subscribe(`{"vehicles": ["沪A00001", "沪A00002"]}`, true)
		if len(snap.Vehicles) != 2 {
			t.Fatalf("snapshot %+v", snap.Vehicles)
		}
		a, b := snap.Vehicles[0], snap.Vehicles[1]
		if a.Plate != "沪A00001" || a.Lat != 31.2 || a.Lng != 121.5 || a.SpeedKmh != 42.5 ||
			a.CourseDeg == nil || *a.CourseDeg != 90 || !a.FixTime.Equal(t0) ||
			!a.ReceivedAt.Equal(t0.Add(1500*time.Millisecond)) || a.Flags == nil || len(a.Flags) != 0 {
			t.Errorf("vehicle %+v does not carry its row", a)
		}
		if b.CourseDeg != nil || !slices.Equal(b.Flags, []string{"interpolated"}) {
			t.Errorf("vehicle %+v does not carry its row", b)
		}
	})
}

// TestFeedFromKafka produces position events to the positions topic and
// sees them arrive at a WebSocket client through the Feed.
func TestFeedFromKafka(t *testing.T) {
	t.Parallel()
	kcfg := testenv.FromEnv(os.LookupEnv).Kafka(t)
	h := newHarness(t, ws.Config{})
	feedReg := prometheus.NewRegistry()
	feed, err := ws.NewFeed(ws.FeedConfig{Kafka: kcfg, Registerer: feedReg}, h.hub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- feed.Run(ctx) }()

	c := h.dial(t)
	const plate = "沪K00001"
	c.subscribe(`{"vehicles": ["`+plate+`"]}`, true)
	got := make(chan frame, 1)
	readErr := make(chan error, 1)
	go func() {
		f, err := c.read()
		if err != nil {
			readErr <- err
			return
		}
		got <- f
	}()

	producer, err := kcfg.NewClient("ws-test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	topic := kcfg.Topic(event.TopicPositions)
	// Once positioned, the feed sees everything produced; a record that is
	// not an event, ahead of the event in its partition, must be skipped.
	select {
	case <-feed.Positioned():
	case err := <-ran:
		t.Fatalf("feed stopped: %v", err)
	}
	e := pos(t, plate, t0, 31.2, 121.5)
	value, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	produced := map[string]event.Envelope{e.ID: e}
	res := producer.ProduceSync(t.Context(),
		&kgo.Record{Topic: topic, Key: []byte(plate), Value: []byte("not an event")},
		&kgo.Record{Topic: topic, Key: []byte(plate), Value: value})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	var arrived frame
	select {
	case arrived = <-got:
	case err := <-readErr:
		t.Fatal(err)
	case err := <-ran:
		t.Fatalf("feed stopped: %v", err)
	}
	if arrived.Type != ws.FrameEvent {
		t.Fatalf("frame %+v, want an event", arrived)
	}
	want, ok := produced[arrived.Event.ID]
	if !ok || arrived.Event.Subject != plate || arrived.Event.Type != event.TypePositionReported ||
		!arrived.Event.Time.Equal(want.Time) || !jsonEqual(t, arrived.Event.Data, want.Data) {
		t.Errorf("event %+v is not one produced", arrived.Event)
	}
	if n := gatheredSum(t, feedReg, "tms_ws_feed_records_skipped_total"); n < 1 {
		t.Errorf("tms_ws_feed_records_skipped_total %v, want the record that is not an event counted", n)
	}

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(readGuard):
		t.Fatal("Run did not return after its context ended")
	}
}
