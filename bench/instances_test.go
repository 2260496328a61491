package bench

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

const (
	// instancesPartitions is the positions topic's partition count in
	// BenchmarkGeofenceInstances: tms's default (TMS_KAFKA_PARTITIONS),
	// divisible by 1, 2 and 3 instances alike.
	instancesPartitions = 12
	// instancesSteps is how many fixes each of the geofenceVehicles
	// vehicles reports, one a second: 2,000,000 fixes, about 15 s of work
	// for one instance, so that the instances' start-up is small beside it.
	instancesSteps = 200
)

// instancesFixes are the fixes of BenchmarkGeofenceInstances: the fleet
// of the geofence workload (same stations, same vehicles) driving for
// instancesSteps seconds.
var instancesFixes = sync.OnceValue(func() []geoworkload.Fix {
	w, _ := geofenceWorkload()
	return geoworkload.Fixes(rand.New(rand.NewPCG(2024, 11)), w, geofenceVehicles, instancesSteps)
})

// BenchmarkGeofenceInstances measures how the geofence role scales with
// instances: 1, 2 and 3 real `tms serve` processes (TMS_ROLES=geofence,
// each its own TMS_INSTANCE_ID, so static members of the one consumer
// group) share a positions topic of 12 partitions, pre-filled with
// 2,000,000 fixes of 10,000 vehicles, and the 10,000 stations.
//
// Real processes, not the in-process processor of BenchmarkGeofenceKafka:
// what is measured is what separate instances give, each with its own Go
// runtime (GOMAXPROCS, garbage collector, heap), its own copy of the
// catalogue, its own Kafka clients and transactions, competing for the
// machine's cores as deployed instances do; processors in one process
// would share one runtime and hide exactly that.
//
// The processes are started together; each loads the catalogue, then
// joins the group. The timer starts once the group is stable with every
// instance a member holding partitions (what was consumed before, while
// the first members had more partitions, is left out of the rates) and
// stops when the group's committed offsets reach the end of every
// partition. An instance's rate is the fixes of its partitions over the
// time until its last partition was done; its CPU time is read from
// /proc/<pid>/stat over the same interval. A rebalance inside the timed
// interval fails the benchmark, as the figures would mix assignments.
//
// One untimed pass with two instances over 1,000,000 fixes warms the
// broker first (see BenchmarkGeofenceKafka for why).
func BenchmarkGeofenceInstances(b *testing.B) {
	if !svc.RealKafka() {
		b.Fatal("BenchmarkGeofenceInstances runs tms serve processes against a real Kafka: run it under deploy/test/services.sh")
	}
	bin, err := tmsproc.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	_, warmFixes := geofenceWorkload()
	warm := runInstances(b, bin, 2, warmFixes)
	b.Logf("warm-up pass, 2 instances, not timed: %.0f fixes/s over %d fixes", warm.rate(), warm.timedFixes())
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			b.StopTimer()
			if b.N != 1 {
				b.Fatalf("one op is a whole pass over the topic: run with -benchtime 1x (b.N is %d)", b.N)
			}
			fixes := instancesFixes()
			loadBefore, _ := os.ReadFile("/proc/loadavg")
			r := runInstances(b, bin, n, fixes)
			reportCores(b, fmt.Sprintf("%d tms serve processes (TMS_ROLES=geofence, H3 index, default settings), one consumer group; "+
				"positions topic of %d partitions with %d fixes (%d vehicles, one fix a second), %d stations; Kafka co-located, "+
				"replication factor of the broker; /proc/loadavg before the fill: %s",
				n, instancesPartitions, len(fixes), geofenceVehicles, r.stations, strings.TrimSpace(string(loadBefore))))
			r.log(b)
			b.ReportMetric(r.rate(), "fixes/s")
			var cpu float64
			for i, in := range r.instances {
				b.ReportMetric(in.rate(), fmt.Sprintf("inst%d-fixes/s", i+1))
				b.ReportMetric(in.cpuPerFix(), fmt.Sprintf("inst%d-cpu-us/fix", i+1))
				cpu += in.cpu
			}
			b.ReportMetric(cpu/r.elapsed.Seconds(), "tms-cores")
			b.ReportMetric(1e6*cpu/float64(r.timedFixes()), "tms-cpu-us/fix")
		})
	}
}

// instancesRun is what one pass measured.
type instancesRun struct {
	stations int
	// encoded is the fixes' keys and values in bytes; onDisk the
	// topics' log segments after the pass (one replica).
	encoded int64
	onDisk  map[string]int64
	fixes   int64
	// started is from the processes' start to the group's being stable
	// with every instance; before is what was committed by then.
	started time.Duration
	before  int64
	elapsed time.Duration
	// instances are in the order they were started.
	instances []instanceRun
	shares    []cpuShare
	wall      time.Duration
}

// instanceRun is one process's share of a pass.
type instanceRun struct {
	id         string
	partitions []int32
	fixes      int64 // consumed in the timed interval
	done       time.Duration
	cpu        float64 // seconds, over the timed interval
	peakRSS    string  // VmHWM at the end
}

func (r instancesRun) timedFixes() int64 {
	var n int64
	for _, in := range r.instances {
		n += in.fixes
	}
	return n
}

func (r instancesRun) rate() float64 { return float64(r.timedFixes()) / r.elapsed.Seconds() }

func (in instanceRun) rate() float64 { return float64(in.fixes) / in.done.Seconds() }

func (in instanceRun) cpuPerFix() float64 { return 1e6 * in.cpu / float64(in.fixes) }

func (r instancesRun) log(b *testing.B) {
	b.Helper()
	b.Logf("group stable with %d members %s after the start; %d fixes committed before the timer, %d timed; "+
		"aggregate %.0f fixes/s over %s", len(r.instances), r.started.Round(time.Millisecond), r.before, r.timedFixes(),
		r.rate(), r.elapsed.Round(time.Millisecond))
	for i, in := range r.instances {
		b.Logf("instance %d (%s): partitions %v, %d fixes done in %s: %.0f fixes/s; CPU %.1f s = %.2f cores, %.1f µs/fix; peak RSS %s",
			i+1, in.id, in.partitions, in.fixes, in.done.Round(time.Millisecond), in.rate(),
			in.cpu, in.cpu/in.done.Seconds(), in.cpuPerFix(), in.peakRSS)
	}
	logCPU(b, r.shares, r.wall)
	b.Logf("bytes per fix: %.0f encoded (key and CloudEvent JSON); on the broker's disk after the pass (lz4 batches of the fill, "+
		"one replica each): %s %.0f, %s %.0f, %s %.0f",
		float64(r.encoded)/float64(r.fixes),
		event.TopicPositions, float64(r.onDisk[event.TopicPositions])/float64(r.fixes),
		event.TopicGeofence, float64(r.onDisk[event.TopicGeofence])/float64(r.fixes),
		event.TopicGeofenceState, float64(r.onDisk[event.TopicGeofenceState])/float64(r.fixes))
}

// runInstances fills topics of their own (12 partitions) with the
// stations and fixes, runs n geofence processes over them until they
// have committed every fix, stops them, and returns what it measured.
func runInstances(b *testing.B, bin string, n int, fixes []geoworkload.Fix) instancesRun {
	b.Helper()
	kc := partitionedKafka(b, instancesPartitions)
	var r instancesRun
	r.stations = fillStations(b, kc)
	r.encoded = produceFixes(b, kc, time.Now().Add(-24*time.Hour).Truncate(time.Second), fixes)
	adm, err := kc.NewAdmin("bench-admin")
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	topic := kc.Topic(event.TopicPositions)
	ends := partitionEnds(b, adm, topic)
	for _, end := range ends {
		r.fixes += end
	}

	start := time.Now()
	procs := make([]*tmsproc.Process, n)
	ids := make([]string, n)
	for i := range procs {
		ids[i] = testenv.Name(fmt.Sprintf("geofence%d", i+1))
		procs[i] = tmsproc.Serve(b, bin,
			"KAFKA_BROKERS="+strings.Join(kc.Brokers, ","),
			"TMS_KAFKA_NAMESPACE="+kc.Namespace,
			"TMS_KAFKA_PARTITIONS="+strconv.Itoa(instancesPartitions),
			"TMS_INSTANCE_ID="+ids[i],
			"TMS_ROLES=geofence",
			"TMS_DATA_DIR="+b.TempDir(),
			"TMS_LOG_LEVEL=warn",
		)
	}
	alive := func() {
		for i, p := range procs {
			if p.Exited() {
				b.Fatalf("geofence instance %d exited:\n%s", i+1, p.Output())
			}
		}
	}
	var owners map[int32]int
	tmsproc.Eventually(b, 2*time.Minute, fmt.Sprintf("the geofence group stable with %d members holding partitions", n), func() bool {
		alive()
		owners = assignment(b, adm, kc, topic, ids)
		return owners != nil
	})
	r.started = time.Since(start)
	cpu0 := make([]float64, n)
	for i, p := range procs {
		cpu0[i] = pidCPU(b, p.Pid())
	}
	meter := startCPU()
	at := committedByPartition(b, adm, kc, topic)
	b.StartTimer()
	t0 := time.Now()
	for _, off := range at {
		r.before += off
	}

	r.instances = make([]instanceRun, n)
	for i := range r.instances {
		r.instances[i].id = ids[i]
	}
	for p, owner := range owners {
		in := &r.instances[owner]
		in.partitions = append(in.partitions, p)
		in.fixes += ends[p] - at[p]
	}
	pending := slices.Collect(maps.Keys(ends))
	deadline := t0.Add(10 * time.Minute)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("after 10 minutes, partitions %v of %s are not done", pending, topic)
		}
		alive()
		time.Sleep(50 * time.Millisecond)
		now := committedByPartition(b, adm, kc, topic)
		since := time.Since(t0)
		pending = slices.DeleteFunc(pending, func(p int32) bool {
			if now[p] < ends[p] {
				return false
			}
			in := &r.instances[owners[p]]
			in.done = max(in.done, since)
			return true
		})
	}
	r.elapsed = time.Since(t0)
	b.StopTimer()
	r.shares, r.wall = meter.stop()
	for i, p := range procs {
		r.instances[i].cpu = pidCPU(b, p.Pid()) - cpu0[i]
		r.instances[i].peakRSS = peakRSS(p.Pid())
		slices.Sort(r.instances[i].partitions)
	}
	if after := assignment(b, adm, kc, topic, ids); !maps.Equal(after, owners) {
		b.Fatalf("the group rebalanced during the timed interval (owners %v, then %v): the rates would mix assignments", owners, after)
	}
	for i, p := range procs {
		if err := p.Stop(); err != nil {
			b.Fatalf("stopping geofence instance %d: %v", i+1, err)
		}
	}
	r.onDisk = topicSizes(b, adm, kc, event.TopicPositions, event.TopicGeofence, event.TopicGeofenceState)
	return r
}

// topicSizes returns the size of each topic's log segments on the
// brokers (every replica), by topic name without the namespace.
func topicSizes(b *testing.B, adm *kadm.Client, kc *kafka.Config, topics ...string) map[string]int64 {
	b.Helper()
	// A topic added to a TopicsSet without partitions asks for none:
	// every topic is asked for, and these picked out.
	dirs, err := adm.DescribeAllLogDirs(context.Background(), nil)
	if err != nil {
		b.Fatalf("log dirs: %v", err)
	}
	out := map[string]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		for _, t := range topics {
			for _, p := range d.Topics[kc.Topic(t)] {
				out[t] += p.Size
			}
		}
	})
	return out
}

// partitionedKafka makes tms's topics under a namespace of their own with
// partitions partitions each (testenv's have 3), and waits until the
// broker serves them.
func partitionedKafka(b *testing.B, partitions int32) *kafka.Config {
	b.Helper()
	kc := &kafka.Config{Brokers: svc.KafkaBrokers, Namespace: testenv.Name("t"), Partitions: partitions, ReplicationFactor: -1, Logger: quiet}
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		b.Fatal(err)
	}
	adm, err := kc.NewAdmin("bench-admin")
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	if _, err := kc.EnsureTopics(context.Background(), adm); err != nil {
		b.Fatal(err)
	}
	var topics []string
	for _, spec := range kafka.Topics() {
		topics = append(topics, kc.Topic(spec.Name))
	}
	tmsproc.Eventually(b, 30*time.Second, "the broker serving the new topics", func() bool {
		ends, err := adm.ListEndOffsets(context.Background(), topics...)
		return err == nil && ends.Error() == nil
	})
	return kc
}

// partitionEnds returns topic's end offset per partition.
func partitionEnds(b *testing.B, adm *kadm.Client, topic string) map[int32]int64 {
	b.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		b.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) != instancesPartitions {
		b.Fatalf("%s has %d partitions, not %d", topic, len(out), instancesPartitions)
	}
	return out
}

// committedByPartition returns the geofence group's committed offset on
// each partition of topic (0 for none yet).
func committedByPartition(b *testing.B, adm *kadm.Client, kc *kafka.Config, topic string) map[int32]int64 {
	b.Helper()
	offsets, err := adm.FetchOffsets(context.Background(), kc.Group(pipeline.Group))
	if err != nil {
		b.Fatalf("committed offsets of the geofence group: %v", err)
	}
	out := map[int32]int64{}
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// assignment returns which instance (its index in ids) owns each
// partition of topic, once the geofence group is stable with every
// instance a member holding partitions and every partition assigned; nil
// before.
func assignment(b *testing.B, adm *kadm.Client, kc *kafka.Config, topic string, ids []string) map[int32]int {
	b.Helper()
	groups, err := adm.DescribeGroups(context.Background(), kc.Group(pipeline.Group))
	if err != nil {
		return nil // the coordinator may not be there yet
	}
	g, ok := groups[kc.Group(pipeline.Group)]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != len(ids) {
		return nil
	}
	owners := map[int32]int{}
	for _, m := range g.Members {
		if m.InstanceID == nil {
			return nil
		}
		// kafka.Config.MemberOptions: the instance id, "/", the group.
		who := slices.IndexFunc(ids, func(id string) bool { return strings.HasPrefix(*m.InstanceID, id+"/") })
		c, ok := m.Assigned.AsConsumer()
		if who < 0 || !ok {
			return nil
		}
		held := 0
		for _, t := range c.Topics {
			if t.Topic != topic {
				continue
			}
			for _, p := range t.Partitions {
				owners[p] = who
				held++
			}
		}
		if held == 0 {
			return nil
		}
	}
	if len(owners) != instancesPartitions {
		return nil
	}
	return owners
}

// pidCPU is the process's CPU time so far (user + system, every thread).
func pidCPU(b *testing.B, pid int) float64 {
	b.Helper()
	p, ok := readProc(pid)
	if !ok {
		b.Fatalf("process %d is gone", pid)
	}
	return p.cpu
}

// peakRSS is the process's VmHWM line from /proc/<pid>/status.
func peakRSS(pid int) string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
