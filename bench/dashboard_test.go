package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/simulator"
)

// The dashboard benchmark's fleet: dashVehicles at one fix each every
// dashInterval (2,000 positions/s, spread evenly by the simulator's pacer),
// driving in the Shanghai area, whose circle (40 km) holds every fix.
const (
	dashVehicles = 10_000
	dashInterval = 5 * time.Second
	// dashDefaultDuration is how long the page is measured when
	// TMS_DASH_BENCH_DURATION does not say: the figures are
	// after 10 minutes.
	dashDefaultDuration = 10 * time.Minute
	// dashOfflineTiles is a tile URL nothing answers at: the benchmark
	// runs offline, and the driver reads the map's view from where its
	// tiles are placed, loaded or not.
	dashOfflineTiles = "http://127.0.0.1:9/{z}/{x}/{y}.png"
)

// dashResult is what web/bench/dashboard.bench.mjs prints (the members
// reported here; the rest is logged as it came).
type dashResult struct {
	FirstLoadMs    float64 `json:"first_load_ms"`
	LoadEventMs    float64 `json:"load_event_ms"`
	FrameP50Ms     float64 `json:"frame_p50_ms"`
	FrameP95Ms     float64 `json:"frame_p95_ms"`
	FrameP99Ms     float64 `json:"frame_p99_ms"`
	HeapMB         float64 `json:"heap_MB"`
	RSSMB          float64 `json:"rss_MB"`
	PSSMB          float64 `json:"pss_MB"`
	PrivateMB      float64 `json:"private_MB"`
	PositionsPerS  float64 `json:"positions_per_s"`
	Counted        int     `json:"counted"`
	Frames         int     `json:"frames"`
	LoggedInByForm bool    `json:"logged_in_by_form"`
	PageErrors     []any   `json:"page_errors"`
}

// BenchmarkDashboard measures the dashboard in a real browser: the real
// `tms serve` (built with whatever web build is present) on the services
// `make bench` starts, fed by `tms simulate --vehicles 10000 --interval
// 5s`, and one page in Debian's Chromium, driven by
// web/bench/dashboard.bench.mjs (playwright-core), logged in as a viewer
// with the map fitted to the whole fleet, for TMS_DASH_BENCH_DURATION
// (default 10m). It reports the page's frame times (the time between
// requestAnimationFrame callbacks, p50 and p95), its JS heap and the
// resident memory of Chromium's renderer processes at the end, and the
// first load (navigation to the first vehicles counted). Everything runs
// on this machine: tms, the services, the simulator and the browser share
// its cores.
func BenchmarkDashboard(b *testing.B) {
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	chromium := dashPrerequisites(b, root)
	duration := dashDefaultDuration
	if v := os.Getenv("TMS_DASH_BENCH_DURATION"); v != "" {
		if duration, err = time.ParseDuration(v); err != nil || duration <= 0 {
			b.Fatalf("TMS_DASH_BENCH_DURATION=%q: a positive duration, e.g. 10m", v)
		}
	}
	reportCores(b, fmt.Sprintf("tms serve (all roles) via internal/tmsproc; tms simulate --vehicles %d --interval %s (Shanghai, %d positions/s); "+
		"one page in headless Chromium (%s), viewer, map fitted to the fleet, measured %s; all co-located",
		dashVehicles, dashInterval, int(dashVehicles/dashInterval.Seconds()), chromium, duration))
	b.StopTimer()
	bin, err := tmsproc.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var r dashResult
	for range b.N {
		r = runDashboard(b, bin, root, chromium, duration)
	}
	b.ReportMetric(r.FrameP95Ms, "frame_p95_ms")
	b.ReportMetric(r.FrameP50Ms, "frame_p50_ms")
	b.ReportMetric(r.HeapMB, "heap_MB")
	b.ReportMetric(r.PrivateMB, "private_MB")
	b.ReportMetric(r.PSSMB, "pss_MB")
	b.ReportMetric(r.RSSMB, "rss_MB")
	b.ReportMetric(r.FirstLoadMs, "first_load_ms")
}

// runDashboard runs one deployment, its fleet and the driver, and returns
// what the driver measured.
func runDashboard(b *testing.B, bin, root, chromium string, duration time.Duration) dashResult {
	d := tmsproc.New(b, svc, bin, "TMS_DASHBOARD_TILE_URL="+dashOfflineTiles)
	d.Start()
	ctx, cancel := context.WithTimeout(context.Background(), duration+10*time.Minute)
	defer cancel()

	area := simulator.Shanghai()
	sim := d.Command(ctx, "simulate", "--vehicles", fmt.Sprint(dashVehicles), "--interval", dashInterval.String(),
		"--client-id", testenv.Name("bench-sim"))
	sim.Env = append(sim.Env, "TMS_LOG_LEVEL=info")
	simOut := &lockedLines{}
	sim.Stdout, sim.Stderr = simOut, simOut
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = sim.Process.Kill()
		_ = sim.Wait()
		b.Logf("tms simulate's last summary: %s", simOut.last(1))
	}()
	began := time.Now()
	tmsproc.Eventually(b, 3*time.Minute, fmt.Sprintf("the %d vehicles in the read model", dashVehicles), func() bool {
		return d.Count(`SELECT count(*) FROM vehicles`) >= dashVehicles
	})
	b.Logf("the whole fleet in the read model %s after the simulator started", time.Since(began).Round(time.Second))

	west, south, east, north := areaBBox(area)
	driver := exec.CommandContext(ctx, "node", filepath.Join(root, "web", "bench", "dashboard.bench.mjs"))
	driver.Env = append(os.Environ(),
		"TMS_DASH_URL=http://"+d.HTTPAddr,
		"TMS_DASH_VIEWER_TOKEN="+tmsproc.ViewerToken,
		"CHROMIUM="+chromium,
		fmt.Sprintf("TMS_DASH_BENCH_FLEET=%d", dashVehicles),
		fmt.Sprintf("TMS_DASH_BENCH_BBOX=%.6f,%.6f,%.6f,%.6f", west, south, east, north),
		"TMS_DASH_BENCH_DURATION="+duration.String(),
	)
	// The driver's progress goes to the terminal as it comes: go test
	// keeps only the first ten lines of a benchmark's log, and those are
	// for the figures.
	var stdout bytes.Buffer
	driver.Stdout, driver.Stderr = &stdout, os.Stderr
	// node and its Chromium share a process group, ended as one.
	driver.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	driver.Cancel = func() error { return syscall.Kill(-driver.Process.Pid, syscall.SIGKILL) }
	driver.WaitDelay = 10 * time.Second
	cpu := startCPU()
	b.StartTimer()
	err := driver.Run()
	b.StopTimer()
	shares, wall := cpu.stop()
	if driver.Process != nil {
		_ = syscall.Kill(-driver.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		b.Fatalf("the driver failed (%v); its output is on stderr", err)
	}
	// "tms binary" is every child of this process here: tms serve, tms
	// simulate and node; Chromium is among the other processes.
	logCPU(b, shares, wall)
	out := strings.TrimSpace(stdout.String())
	line := out[strings.LastIndexByte(out, '\n')+1:]
	var r dashResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		b.Fatalf("the driver's result %q: %v", line, err)
	}
	b.Logf("driver's result: %s", line)
	if r.Frames == 0 || r.Counted < dashVehicles || r.RSSMB <= 0 || len(r.PageErrors) > 0 {
		b.Fatalf("the page drew %d frames, counted %d of %d vehicles, its renderer had %.1f MB resident and it raised %v",
			r.Frames, r.Counted, dashVehicles, r.RSSMB, r.PageErrors)
	}
	return r
}

// areaBBox is the bounding box of area's circle, which holds every fix of
// its fleet, in degrees (on the flat projection the simulator uses).
func areaBBox(area simulator.Area) (west, south, east, north float64) {
	const kmPerDegree = 2 * math.Pi * 6371 / 360
	dLat := area.RadiusKm / kmPerDegree
	dLng := dLat / math.Cos(area.Lat*math.Pi/180)
	return area.Lng - dLng, area.Lat - dLat, area.Lng + dLng, area.Lat + dLat
}

// dashPrerequisites fails the benchmark, saying what to do, when the
// dashboard's build, Chromium, node or web's playwright-core is missing,
// and returns the Chromium to drive.
func dashPrerequisites(b *testing.B, root string) string {
	b.Helper()
	var missing []string
	if _, err := os.Stat(filepath.Join(root, "adapters", "dashboard", "static", "app", "index.html")); err != nil {
		missing = append(missing, "the dashboard's build, adapters/dashboard/static/app/index.html (make web)")
	}
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if chromium, err = exec.LookPath("chromium"); err != nil {
			missing = append(missing, "Chromium, /usr/bin/chromium or chromium on PATH (apt-get install chromium)")
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node on PATH")
	}
	if _, err := os.Stat(filepath.Join(root, "web", "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "web/node_modules/playwright-core (npm --prefix web ci)")
	}
	if len(missing) > 0 {
		b.Fatalf("BenchmarkDashboard needs %s", strings.Join(missing, "; "))
	}
	return chromium
}

// lockedLines keeps a process's output for its last lines.
type lockedLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// last returns the last n lines.
func (l *lockedLines) last(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(l.buf.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
