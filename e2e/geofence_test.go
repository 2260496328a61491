package e2e

import (
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/fleettest"
)

// TestGeofenceSIGKILLUnderLoadChangesNothing kills the geofence with
// SIGKILL while it works through a backlog of positions, starts it again,
// and compares what read_committed consumers of tms.geofence see with
// what an uninterrupted tracker makes of the same positions: the same
// events, each once, in order per vehicle.
func TestGeofenceSIGKILLUnderLoadChangesNothing(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_ROLES=geofence,api")
	w := fleettest.New(t, 40, 150)
	want := w.Expected(t, geofence.Config{ReorderWindow: geofence.DefaultReorderWindow})
	positions := fleettest.PositionRecords(t, d.Kafka, w.Fixes)
	half := len(positions) / 2

	fleettest.Produce(t, d.Kafka, w.StationRecords(t, d.Kafka))
	d.Start()
	fleettest.Produce(t, d.Kafka, positions[:half])
	fleettest.ReadGeofence(t, d.Kafka, 1, time.Minute) // it is working
	d.Kill()
	committed := fleettest.Count(fleettest.ReadGeofence(t, d.Kafka, 0, time.Minute))
	t.Logf("SIGKILL with %d of %d events committed", committed, fleettest.Count(want))

	fleettest.Produce(t, d.Kafka, positions[half:])
	d.Start()
	fleettest.Compare(t, fleettest.ReadGeofence(t, d.Kafka, fleettest.Count(want), 2*time.Minute), want)
	d.Stop()
}
