package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/internal/testenv"
)

// svc are the services `make bench` starts.
var svc = testenv.FromEnv(os.LookupEnv)

// quiet logs warnings and errors only: the components' info lines would
// drown the benchmark output.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// reportCores puts the machine's core count on the result line and logs
// what the benchmark ran on.
func reportCores(b *testing.B, setup string) {
	b.Helper()
	b.ReportMetric(float64(runtime.NumCPU()), "cores")
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("cores: runtime.NumCPU()=%d GOMAXPROCS=%d; /proc/loadavg: %s",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.TrimSpace(string(load)))
	b.Logf("setup: %s", setup)
}

// endOffset sums the end offsets of topic's partitions: the records Kafka
// has acknowledged.
func endOffset(b *testing.B, kc *kafka.Config, topic string) int64 {
	b.Helper()
	adm, err := kc.NewAdmin("bench-admin")
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		b.Fatalf("end offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted values
// by the nearest-rank method.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// cpuMeter measures the CPU time the processes involved in a benchmark
// use while it is timed, from /proc: the benchmark process, its children
// (the tms binary), Postgres (the postmaster and its backends), the Kafka
// JVM and Mosquitto, and the machine as a whole, so that what is left
// (other processes) and the idle time show too.
type cpuMeter struct {
	services serviceProcs
	began    time.Time
	start    map[string]float64
	machine  machineCPU
}

// serviceProcs are the process ids of the services services.sh started.
type serviceProcs struct {
	postmaster, kafka, mosquitto int
}

// findServices locates the services' processes from Postgres's data
// directory: services.sh keeps the Kafka and Mosquitto pid files two
// levels above it (<statedir>/pg/data). Zero ids where that fails.
func findServices() serviceProcs {
	var s serviceProcs
	if svc.DatabaseURL == "" {
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, svc.DatabaseURL)
	if err != nil {
		return s
	}
	defer conn.Close(ctx)
	var data string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&data); err != nil {
		return s
	}
	state := filepath.Dir(filepath.Dir(data))
	s.postmaster = readPID(filepath.Join(data, "postmaster.pid"))
	s.kafka = readPID(filepath.Join(state, "kafka.pid"))
	s.mosquitto = readPID(filepath.Join(state, "mosquitto.pid"))
	return s
}

func readPID(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// proc is one process as /proc/<pid>/stat shows it.
type proc struct {
	pid, ppid int
	comm      string
	cpu       float64 // user + system seconds
}

func processes() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// readProc reads /proc/<pid>/stat; false when the process is gone.
func readProc(pid int) (proc, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return proc{}, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return proc{pid: pid, ppid: ppid, comm: s[open+1 : end], cpu: (utime + stime) / clockTicks}, true
}

// groups are the process groups a meter reports, in order.
var groups = []string{"benchmark (go test)", "tms binary", "postgres", "kafka (JVM)", "mosquitto"}

// sample returns the CPU seconds used so far by each group.
func (m *cpuMeter) sample() map[string]float64 {
	self := os.Getpid()
	out := map[string]float64{}
	for _, p := range processes() {
		switch {
		case p.pid == self:
			out[groups[0]] += p.cpu
		case p.ppid == self:
			out[groups[1]] += p.cpu
		case m.services.postmaster != 0 && (p.pid == m.services.postmaster || p.ppid == m.services.postmaster):
			out[groups[2]] += p.cpu
		case p.pid == m.services.kafka && p.pid != 0:
			out[groups[3]] += p.cpu
		case p.pid == m.services.mosquitto && p.pid != 0:
			out[groups[4]] += p.cpu
		}
	}
	return out
}

// machineCPU is the first line of /proc/stat, in seconds: busy, idle
// (with iowait) and stolen by the hypervisor.
type machineCPU struct{ busy, idle, steal float64 }

func readMachineCPU() machineCPU {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	var m machineCPU
	// user nice system idle iowait irq softirq steal (guest times are
	// already inside user and nice).
	for i := 1; i < len(f) && i <= 8; i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		switch i {
		case 4, 5:
			m.idle += v / clockTicks
		case 8:
			m.steal += v / clockTicks
		default:
			m.busy += v / clockTicks
		}
	}
	return m
}

func startCPU() *cpuMeter {
	m := &cpuMeter{services: findServices()}
	m.start = m.sample()
	m.machine = readMachineCPU()
	m.began = time.Now()
	return m
}

// cpuShare is the CPU a group used over a measured interval.
type cpuShare struct {
	name    string
	seconds float64
}

// stop returns the CPU each group used since start, then the rest of the
// machine's busy time ("other processes"), its idle time and the time the
// hypervisor reports it took, and the wall time they were measured over.
func (m *cpuMeter) stop() ([]cpuShare, time.Duration) {
	end := m.sample()
	machine := readMachineCPU()
	wall := time.Since(m.began)
	var out []cpuShare
	var ours float64
	for _, g := range groups {
		d := end[g] - m.start[g]
		if _, ok := end[g]; !ok {
			continue
		}
		ours += d
		out = append(out, cpuShare{g, d})
	}
	out = append(out,
		cpuShare{"other processes", max(0, machine.busy-m.machine.busy-ours)},
		cpuShare{"idle", machine.idle - m.machine.idle},
		cpuShare{"stolen by the hypervisor", machine.steal - m.machine.steal})
	return out, wall
}

// logCPU writes the CPU shares as seconds and as a share of the machine's
// capacity over the interval (wall time x cores).
func logCPU(b *testing.B, shares []cpuShare, wall time.Duration) {
	b.Helper()
	capacity := wall.Seconds() * float64(runtime.NumCPU())
	parts := make([]string, 0, len(shares))
	for _, s := range shares {
		parts = append(parts, fmt.Sprintf("%s %.1f s (%.0f%%)", s.name, s.seconds, 100*s.seconds/capacity))
	}
	b.Logf("CPU over %.1f s wall x %d cores = %.1f core-s: %s", wall.Seconds(), runtime.NumCPU(), capacity,
		strings.Join(parts, ", "))
}

// share returns the named group's CPU seconds.
func share(shares []cpuShare, name string) float64 {
	i := slices.IndexFunc(shares, func(s cpuShare) bool { return s.name == name })
	if i < 0 {
		return 0
	}
	return shares[i].seconds
}

// profileCPU writes a CPU profile of the benchmark process from now until
// the returned function is called, when TMS_BENCH_PROFILE_DIR names a
// directory for it (<dir>/<name>.pprof): a profile of a timed interval
// alone, without the setup.
func profileCPU(b *testing.B, name string) (stop func()) {
	b.Helper()
	dir := os.Getenv("TMS_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}
