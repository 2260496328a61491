package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/jobtest"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections"
)

// TestReplayReadModelsRebuildsTheRegisteredReadModels builds the read
// models from a world's topics, damages them, and runs `tms replay
// read-models` (the old name of `tms rebuild`) with the project role
// stopped: every registered read model's tables (projections.All) come
// back exactly as the live projectors left them, and what is not a
// registered read model's (a retired projector's offsets, replay results)
// is left alone. TestRebuildWithoutDowntime rebuilds while everything
// runs.
func TestReplayReadModelsRebuildsTheRegisteredReadModels(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_ROLES=geofence,project,api")
	w := fleettest.New(t, 6, 120)
	w.Delete("HAZ", 2, fleettest.T0.Add(10*time.Minute)) // a deleted station's row too
	want := w.Expected(t, geofence.Config{ReorderWindow: geofence.DefaultReorderWindow})
	fleettest.Produce(t, d.Kafka, w.StationRecords(t, d.Kafka))
	fleettest.Produce(t, d.Kafka, fleettest.PositionRecords(t, d.Kafka, w.Fixes))
	// Trips and stops, one of them revised by a late fix.
	fleettest.Produce(t, d.Kafka, fleettest.PositionRecords(t, d.Kafka, stopAndGo("沪T00009", fleettest.T0)))
	// A gap `tms backfill g7` filled later: its trips, through the trips
	// projection's backfill lane.
	fleettest.Produce(t, d.Kafka, backfilledGap(t, d.Kafka, "沪T00010", fleettest.T0))
	// Jobs (the job processor does not run here: its events are given).
	for i, plate := range []string{"沪J00001", "沪J00002"} {
		jobs := jobtest.Sample(t, plate, fmt.Sprintf("ORD-%d", i), fleettest.T0)
		if n := len(jobs.Of(event.TypeJobCompleted)) + len(jobs.Of(event.TypeJobCancelled)); n != 2 {
			t.Fatalf("premise: the sample of jobs completes one and cancels one, not %d", n)
		}
		fleettest.Produce(t, d.Kafka, jobtest.KafkaRecords(t, d.Kafka, jobs.Records...))
	}
	// G7's events: a stop reported open, then closed, and an idle event.
	fleettest.Produce(t, d.Kafka, g7Records(t, d, "沪T00009", fleettest.T0))
	d.Start()
	fleettest.ReadGeofence(t, d.Kafka, fleettest.Count(want), 2*time.Minute)
	tmsproc.Eventually(t, time.Minute, "every projector at the end of its topics", func() bool { return d.ProjectorsBehind() == "" })
	d.Stop()
	if behind := d.ProjectorsBehind(); behind != "" {
		t.Fatalf("premise: the projectors stopped caught up, but %s", behind)
	}
	before := snapshot(t, d)
	for table, s := range before {
		if s.rows == 0 {
			t.Fatalf("premise: the world fills every read model, but %s is empty", table)
		}
	}

	// What is not a registered read model's.
	const runID = "6f1c2d3e-0000-4000-8000-000000000001"
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := d.Pool.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO projector_offsets (projector, topic, partition, next_offset) VALUES ('tms.projector.retired', 'tms.jobs', 0, 42)`)
	exec(`INSERT INTO replay_runs (id, station_id, station_version, from_time, to_time, started_at, status)
		VALUES ($1, 'LOAD', 1, now() - interval '1 day', now(), now(), 'done')`, runID)
	// Damage to mend: rows lost, rows wrong, rows extra.
	exec(`DELETE FROM visits WHERE visit_id IN (SELECT visit_id FROM visits ORDER BY visit_id LIMIT 3)`)
	exec(`UPDATE vehicles SET positions_count = 0`)
	exec(`DELETE FROM positions WHERE fix_time < $1`, fleettest.T0.Add(5*time.Minute))
	exec(`INSERT INTO stations (id, version, updated_at, deleted_at) VALUES ('GHOST', 9, now(), now())`)
	exec(`UPDATE jobs SET revision = 0, completion = NULL`)
	exec(`DELETE FROM job_stops WHERE stop_index = 1`)
	exec(`DELETE FROM job_requests WHERE external_ref IS NULL`)
	exec(`UPDATE g7_events SET open = true, end_time = NULL`)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if out, err := d.Command(ctx, "replay", "read-models").CombinedOutput(); err != nil {
		t.Fatalf("tms replay read-models: %v\n%s", err, out)
	}
	after := snapshot(t, d)
	for _, table := range slices.Sorted(maps.Keys(before)) {
		if after[table] != before[table] {
			t.Errorf("%s after the rebuild: %d rows (digest %s), as the projectors left it: %d rows (digest %s)",
				table, after[table].rows, after[table].digest, before[table].rows, before[table].digest)
		}
	}
	if behind := d.ProjectorsBehind(); behind != "" {
		t.Errorf("after the rebuild, %s", behind)
	}
	if n := d.Count(`SELECT coalesce(max(next_offset), -1) FROM projector_offsets WHERE projector = 'tms.projector.retired'`); n != 42 {
		t.Errorf("a retired projector's offset is %d after the rebuild (-1: deleted); want it kept at 42", n)
	}
	if n := d.Count(`SELECT count(*) FROM replay_runs WHERE id = $1`, runID); n != 1 {
		t.Errorf("the replay run is gone after the rebuild; replay results are kept")
	}
}

// tableState is a table's row count and a digest of its rows.
type tableState struct {
	rows   int64
	digest string
}

// snapshot reads every registered read model's tables.
func snapshot(t *testing.T, d *tmsproc.Deployment) map[string]tableState {
	t.Helper()
	out := map[string]tableState{}
	for _, r := range projections.All() {
		for _, table := range r.Tables {
			var s tableState
			if err := d.Pool.QueryRow(t.Context(), `SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '')
				FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&s.rows, &s.digest); err != nil {
				t.Fatal(err)
			}
			out[table] = s
		}
	}
	return out
}

// g7Records are G7 event reports of plate as ingest writes them: a stop
// reported open, then closed, and an idle event.
func g7Records(t *testing.T, d *tmsproc.Deployment, plate string, at time.Time) []*kgo.Record {
	t.Helper()
	end, idleEnd := at.Add(20*time.Minute), at.Add(40*time.Minute)
	var out []*kgo.Record
	for _, r := range []g7event.Report{
		{Plate: plate, Kind: g7event.KindStop, Start: at, StartLat: 31.2, StartLng: 121.4, ReceivedAt: at},
		{Plate: plate, Kind: g7event.KindStop, Start: at, End: &end, StartLat: 31.2, StartLng: 121.4, ReceivedAt: end},
		{Plate: plate, Kind: g7event.KindIdle, Start: at.Add(30 * time.Minute), End: &idleEnd, StartLat: 31.2, StartLng: 121.4, ReceivedAt: idleEnd},
	} {
		e, err := r.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		out = append(out, &kgo.Record{Topic: d.Kafka.Topic(event.TopicG7Events), Key: []byte(plate), Value: v})
	}
	return out
}
