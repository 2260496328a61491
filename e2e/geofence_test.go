package e2e

import (
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/fleettest"
)

// TestGeofenceSIGKILLUnderLoadChangesNothing kills the geofence with
// SIGKILL while it works through a backlog of positions (some of its
// transactions committed, one open), starts it again, and compares what
// read_committed consumers of tms.geofence see with what an uninterrupted
// tracker makes of the same positions: the same events, each once, in
// order per vehicle.
func TestGeofenceSIGKILLUnderLoadChangesNothing(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_ROLES=geofence,api")
	w := fleettest.New(t, 100, 600)
	want := w.Expected(t, geofence.Config{ReorderWindow: geofence.DefaultReorderWindow})
	positions := fleettest.PositionRecords(t, d.Kafka, w.Fixes)
	half := len(positions) / 2

	fleettest.Produce(t, d.Kafka, w.StationRecords(t, d.Kafka))
	fleettest.Produce(t, d.Kafka, positions[:half])
	d.Start()
	fleettest.ReadGeofence(t, d.Kafka, 1, time.Minute) // it is working
	// The second half arrives at once and the geofence takes a good part
	// of a second over it, in transactions of CommitInterval (100 ms).
	fleettest.Produce(t, d.Kafka, positions[half:])
	d.Kill()
	committed, pending := fleettest.ReadCommittedGeofence(t, d.Kafka)
	t.Logf("SIGKILL with %d of %d events committed and %d records in the transaction left open",
		fleettest.Count(committed), fleettest.Count(want), pending)

	d.Start()
	fleettest.Compare(t, fleettest.ReadGeofence(t, d.Kafka, fleettest.Count(want), 2*time.Minute), want)
	d.Stop()
}
