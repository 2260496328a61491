package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/job"
	geofencepipeline "github.com/tmsfleet/tms/pipeline/geofence"
	"github.com/tmsfleet/tms/pipeline/jobs"
)

// jobsShare is the share of the fleet with a job in the job benchmark.
const jobsShare = 5 // one vehicle in five

// BenchmarkJobsKafka measures the jobs role through Kafka: tms.positions,
// tms.geofence and the job commands of tms.jobs in, job events out, Kafka
// transactions on, as `tms serve` runs it. The inputs are filled before
// the timer starts: the geofence workload's 1,000,000 fixes (10,000
// vehicles, one fix a second), an entry and an exit of a station every
// 30 s for each vehicle, and a job for one vehicle in five; the
// geofence's progress is set at the end of the positions, as for a
// geofence that keeps up. The timer runs from the processor's start until
// its group has committed every input record; the rate is input records
// (positions, visits and commands) a second.
func BenchmarkJobsKafka(b *testing.B) {
	b.StopTimer()
	for i := range geofenceWarmUps {
		kc, inputs, _ := fillJobs(b)
		runJobsBench(b, kc, inputs, i+1)
	}
	b.ResetTimer()
	b.StopTimer()
	kc, inputs, setup := fillJobs(b)
	reportCores(b, setup)
	var elapsed time.Duration
	for range b.N {
		elapsed += runJobsBench(b, kc, inputs, 0)
	}
	b.ReportMetric(float64(b.N)*float64(inputs)/elapsed.Seconds(), "inputs/s")
}

// fillJobs fills topics of their own with the job benchmark's inputs and
// returns their config, how many input records there are, and the setup
// as the benchmark reports it.
func fillJobs(b *testing.B) (*kafka.Config, int64, string) {
	kc := svc.Kafka(b)
	kc.Logger = quiet
	start := time.Now()
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	_, fixes := geofenceWorkload()
	produceFixes(b, kc, t0, fixes)
	visits, commands := fillJobInputs(b, kc, t0)
	positions := endOffset(b, kc, kc.Topic(event.TopicPositions))
	// The geofence has decided every position.
	adm, err := kc.NewAdmin("bench-admin")
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(context.Background(), kc.Topic(event.TopicPositions))
	if err != nil {
		b.Fatal(err)
	}
	offsets := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { offsets.AddOffset(o.Topic, o.Partition, o.Offset, -1) })
	if _, err := adm.CommitOffsets(context.Background(), kc.Group(geofencepipeline.Group), offsets); err != nil {
		b.Fatal(err)
	}
	inputs := positions + visits + commands
	return kc, inputs, fmt.Sprintf("%d position events, %d entries and exits and %d job commands filled in %s before the timer; "+
		"pipeline/jobs in the benchmark process; Kafka co-located, 3 partitions, warmed up by %d untimed passes",
		positions, visits, commands, time.Since(start).Round(time.Millisecond), geofenceWarmUps)
}

// fillJobInputs produces the visits (an entry and an exit every 30 s for
// each vehicle, at one of the workload's stations) and the job commands.
func fillJobInputs(b *testing.B, kc *kafka.Config, t0 time.Time) (visits, commands int64) {
	w, _ := geofenceWorkload()
	rng := rand.New(rand.NewPCG(5, 8))
	cl, err := kc.NewClient("bench-fill-jobs", kgo.ProducerLinger(20*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var failed atomic.Int64
	produce := func(topic string, e event.Envelope) {
		v, _ := json.Marshal(e)
		cl.Produce(context.Background(), &kgo.Record{Topic: kc.Topic(topic), Key: []byte(e.Subject), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	stationID := func(i int) string { return fmt.Sprintf("S%05d", i) }
	facts := job.Facts{VehicleKnown: true, Stations: map[string]job.Station{}}
	for v := range geofenceVehicles {
		plate := vehiclePlate(int32(v))
		if v%jobsShare == 0 {
			load, unload := rng.IntN(len(w.Stations)), rng.IntN(len(w.Stations))
			facts.Stations[stationID(load)] = job.Station{ID: stationID(load), Type: "loading"}
			facts.Stations[stationID(unload)] = job.Station{ID: stationID(unload), Type: "unloading"}
			c, err := job.NewCreate(job.CreateRequest{Vehicle: plate, Cargo: job.Cargo{WeightKg: 20000},
				Stops: []job.StopRequest{{StationID: stationID(load), Kind: job.KindLoading}, {StationID: stationID(unload), Kind: job.KindUnloading}}},
				facts, t0.Add(-time.Minute), fmt.Sprintf("bench-job-%d", v))
			if err != nil {
				b.Fatal(err)
			}
			e, err := c.Event()
			if err != nil {
				b.Fatal(err)
			}
			produce(event.TopicJobs, e)
			commands++
		}
		for s := 10; s < geofenceSteps; s += 30 {
			st := rng.IntN(len(w.Stations))
			tr := geofence.Transition{Kind: geofence.Entered, Vehicle: plate, StationID: stationID(st), StationType: "loading",
				VisitID: fmt.Sprintf("visit-%d-%d", v, s), At: t0.Add(time.Duration(s) * time.Second)}
			exit := tr
			exit.Kind, exit.At, exit.EnteredAt, exit.Dwell = geofence.Exited, tr.At.Add(10*time.Second), tr.At, 10*time.Second
			for _, t := range []geofence.Transition{tr, exit} {
				events, err := t.Events(geofencepipeline.Source)
				if err != nil {
					b.Fatal(err)
				}
				produce(event.TopicGeofence, events[0])
				visits++
			}
		}
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		b.Fatalf("producing the job inputs: %v (%d failed)", err, failed.Load())
	}
	return visits, commands
}

// runJobsBench runs the job processor over the filled topics until its
// group has committed every input record.
func runJobsBench(b *testing.B, kc *kafka.Config, inputs int64, warmUp int) time.Duration {
	p, err := jobs.New(jobs.Config{Kafka: kc, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	adm, err := kc.NewAdmin("bench-admin")
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	cpu := startCPU()
	b.StartTimer()
	t0 := time.Now()
	go func() { done <- p.Run(ctx) }()
	deadline := t0.Add(5 * time.Minute)
	for jobsCommitted(b, adm, kc) < inputs {
		if time.Now().After(deadline) {
			b.Fatalf("after 5 minutes the job processor had committed %d of %d input records", jobsCommitted(b, adm, kc), inputs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	shares, wall := cpu.stop()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if warmUp > 0 {
		b.Logf("warm-up pass %d, not timed: %.0f inputs/s", warmUp, float64(inputs)/elapsed.Seconds())
		return elapsed
	}
	b.Logf("%d input records taken and committed in %s (%.0f inputs/s); %d records on tms.jobs (commands, events and markers); heap in use %.0f MB",
		inputs, elapsed.Round(time.Millisecond), float64(inputs)/elapsed.Seconds(), endOffset(b, kc, kc.Topic(event.TopicJobs)), float64(ms.HeapInuse)/(1<<20))
	logCPU(b, shares, wall)
	return elapsed
}

// jobsCommitted sums the job processor's committed offsets on its inputs
// (on tms.jobs, only up to the commands: its own events follow them).
func jobsCommitted(b *testing.B, adm *kadm.Client, kc *kafka.Config) int64 {
	offsets, err := adm.FetchOffsets(context.Background(), kc.Group(jobs.Group))
	if err != nil {
		return 0
	}
	var n int64
	offsets.Each(func(o kadm.OffsetResponse) {
		switch o.Topic {
		case kc.Topic(event.TopicPositions), kc.Topic(event.TopicGeofence):
			n += o.At
		}
	})
	return n + jobCommandsCommitted(b, adm, kc, offsets)
}

// jobCommandsCommitted counts the commands before the committed offsets
// of tms.jobs: the commands were filled first, so all of them are once
// every partition's offset passed them.
func jobCommandsCommitted(b *testing.B, adm *kadm.Client, kc *kafka.Config, offsets kadm.OffsetResponses) int64 {
	var n int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == kc.Topic(event.TopicJobs) && o.At > 0 {
			n += o.At
		}
	})
	return min(n, int64(geofenceVehicles/jobsShare))
}
