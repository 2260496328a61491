package geofence

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	gojson "github.com/goccy/go-json"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/testenv"
)

// TestSnapshotChunksStayWellUnderKafkasLimit snapshots a partition of
// vehicles with full states (duplicate memory, memberships, pending
// fixes): every record must stay far below Kafka's 1 MB default, and the
// chunks must give back every vehicle.
func TestSnapshotChunksStayWellUnderKafkasLimit(t *testing.T) {
	t.Parallel()
	ps := &partitionState{fleet: geofence.NewFleet(5000), next: 42}
	for v := range 5000 {
		s := geofence.VehicleState{Plate: fmt.Sprintf("沪S%05d", v), MaxSeen: time.Unix(1764230000, 0)}
		for i := range 32 {
			s.Recent = append(s.Recent, 1764230000000+int64(i)*1000)
		}
		for i := range 3 {
			s.Pending = append(s.Pending, geofence.Fix{Time: time.UnixMilli(1764230040000 + int64(i)), Point: geo.Point{Lat: 31.123456789, Lng: 121.123456789}})
			m := geofence.Membership{StationID: fmt.Sprintf("STATION-%04d", i), Version: 3, Inside: true}
			if err := m.SetVisitID("8d3f0c3e-5b8f-5f0e-9d5e-0a1b2c3d4e5f"); err != nil {
				t.Fatal(err)
			}
			m.SetEnteredAt(time.Unix(1764229000, 0))
			s.Members = append(s.Members, m)
		}
		ps.fleet.Restore(s)
	}
	for _, format := range []string{SnapshotBinary, SnapshotJSON} {
		records, err := snapshotRecords("state", 3, ps, format)
		if err != nil {
			t.Fatal(err)
		}
		restored := map[string]bool{}
		var header snapshotHeader
		for _, r := range records {
			if len(r.Value) > chunkBytes+4096 {
				t.Errorf("%s: record %s has %d bytes", format, r.Key, len(r.Value))
			}
			if r.Partition != 3 {
				t.Errorf("%s: record %s for partition %d", format, r.Key, r.Partition)
			}
			if string(r.Key) == headerKey {
				if err := gojson.Unmarshal(r.Value, &header); err != nil {
					t.Fatal(err)
				}
				continue
			}
			id, vehicles, err := decodeChunk(r.Value)
			if err != nil || id == "" {
				t.Fatalf("%s: chunk %s of snapshot %q: %v", format, r.Key, id, err)
			}
			if format == SnapshotJSON {
				// What versions before the binary format read.
				var c snapshotChunk
				if err := gojson.Unmarshal(r.Value, &c); err != nil || c.ID != id || len(c.Vehicles) != len(vehicles) {
					t.Fatalf("the previous version reads chunk %s as %q, %d vehicles, %v", r.Key, c.ID, len(c.Vehicles), err)
				}
			}
			for _, v := range vehicles {
				restored[v.Plate] = len(v.Recent) == 32 && len(v.Members) == 3
			}
		}
		if header.Chunks != len(records)-1 || header.Vehicles != 5000 || header.NextOffset != 42 || len(restored) != 5000 {
			t.Errorf("%s: header %+v, %d records, %d vehicles restored", format, header, len(records), len(restored))
		}
		for plate, whole := range restored {
			if !whole {
				t.Errorf("%s: %s restored without all its state", format, plate)
			}
		}
	}
}

// TestRestoresRunSideBySide restores three partitions at once with client
// metrics on, as a takeover of several partitions does: short-lived
// clients must not register the same metrics twice.
func TestRestoresRunSideBySide(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	kc.Registerer = prometheus.NewRegistry()
	marker, err := kc.NewClient("test-marker", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	r := &restorer{kafka: kc, marker: marker}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 3)
	for p := range int32(3) {
		wg.Go(func() {
			<-start
			tr, _ := geofence.NewTracker(geofence.Config{}, geofence.NewCatalog(geofence.NewBruteForce()))
			_, _, errs[p] = r.restore(t.Context(), tr, p, 0)
		})
	}
	close(start)
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Errorf("partition %d: %v", p, err)
		}
	}
}
