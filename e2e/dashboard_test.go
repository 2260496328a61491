package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tmsfleet/tms/internal/dashctl"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/simulator"
)

// The browser suite's setting.
const (
	// browserSuiteTimeout bounds `npm run test:browser`; the suite is
	// meant to take about two minutes.
	browserSuiteTimeout = 5 * time.Minute
	// offlineTiles is a tile URL nothing answers at (port 9, discard):
	// the tests run offline, and the page must work without its tiles.
	offlineTiles = "http://127.0.0.1:9/{z}/{x}/{y}.png"
	// dashFleet and dashJobs size the simulated fleet the page shows.
	dashFleet = 6
	dashJobs  = 2
)

// TestDashboardInBrowser runs the dashboard's browser suite (web/test/
// browser, node --test driving Debian's Chromium with playwright-core)
// against a real `tms serve` fed by `tms simulate` in the yard, with a
// control server (internal/dashctl) through which the suite drives a
// vehicle of its own and restarts the service. The suite's own tests say
// what they check; this test fails when the suite fails, or cannot run.
//
// It is not parallel: a browser under a software renderer takes a core of
// its own, and the suite's timings hold only when the package's other
// tests are not running beside it.
func TestDashboardInBrowser(t *testing.T) {
	began := time.Now()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	chromium, npm := browserPrerequisites(t, root)

	d := newDeployment(t, "TMS_DASHBOARD_TILE_URL="+offlineTiles)
	d.Start()
	servesBuild(t, d, root)
	sim, simOut := simulate(t, d, "simulate", "--area", "yard", "--vehicles", fmt.Sprint(dashFleet),
		"--jobs", fmt.Sprint(dashJobs), "--dwell", "20s", "--client-id", testenv.Name("sim"))
	simExited := make(chan error, 1)
	go func() { simExited <- sim.Wait() }()
	// The fleet and its jobs are there before the page opens, so that
	// the suite's timeouts measure the page, not the simulator's start,
	// and no job's create is in flight when the suite restarts tms (its
	// request would outlast the HTTP server's shutdown, and tms would
	// exit 1).
	sites := len(simulator.Yard().Sites)
	var stations stationList
	var jobs jobList
	var vehicles struct {
		Vehicles []struct{} `json:"vehicles"`
	}
	tmsproc.Eventually(t, 90*time.Second, fmt.Sprintf("the yard's %d stations, %d vehicles and %d jobs in the API", sites, dashFleet, dashJobs), func() bool {
		return d.Get("/api/v1/stations?limit=100", &stations) == 200 && len(stations.Stations) == sites &&
			d.Get("/api/v1/vehicles?limit=100", &vehicles) == 200 && len(vehicles.Vehicles) == dashFleet &&
			d.Get("/api/v1/jobs?limit=10", &jobs) == 200 && len(jobs.Jobs) == dashJobs
	})

	log := &testLines{t: t, prefix: "dashctl: "}
	ctl, err := dashctl.New(t.Context(), dashctl.Config{BrokerURL: d.MQTTURL, Topic: d.Topic,
		ClientID: testenv.Name("dashctl"), Service: d, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Close)
	control := httptest.NewServer(ctl) // on loopback
	t.Cleanup(control.Close)

	screenshots := t.TempDir()
	if os.Getenv("TMS_DASH_SAVE_SCREENSHOTS") == "1" {
		screenshots = filepath.Join(root, "docs", "dashboard")
		if err := os.MkdirAll(screenshots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("tms at http://%s, control server at %s, fleet ready after %s; running the browser suite",
		d.HTTPAddr, control.URL, time.Since(began).Round(time.Second))

	ctx, cancel := context.WithTimeout(t.Context(), browserSuiteTimeout)
	defer cancel()
	suite := exec.CommandContext(ctx, npm, "--prefix", filepath.Join(root, "web"), "run", "test:browser")
	suite.Env = append(os.Environ(),
		"TMS_DASH_URL=http://"+d.HTTPAddr,
		"TMS_DASH_VIEWER_TOKEN="+tmsproc.ViewerToken,
		"TMS_DASH_OPERATOR_TOKEN="+tmsproc.OperatorToken,
		"CHROMIUM="+chromium,
		"TMS_DASH_SCREENSHOTS="+screenshots,
		"TMS_DASH_CONTROL="+control.URL,
	)
	out := &testLines{t: t, prefix: "browser: "}
	suite.Stdout, suite.Stderr = out, out
	// npm, node and the browsers node starts share a process group of
	// their own, ended as one on timeout and once the suite is over: a
	// Chromium left behind would hold memory and a core.
	suite.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	suite.Cancel = func() error { return syscall.Kill(-suite.Process.Pid, syscall.SIGKILL) }
	suite.WaitDelay = 10 * time.Second
	err = suite.Run()
	if suite.Process != nil {
		_ = syscall.Kill(-suite.Process.Pid, syscall.SIGKILL)
	}
	out.Flush()
	log.Flush()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		t.Fatalf("the browser suite did not finish within %s", browserSuiteTimeout)
	case err != nil:
		t.Fatalf("the browser suite failed (%v); its output is above", err)
	}
	select {
	case err := <-simExited:
		t.Errorf("tms simulate ended during the suite (%v):\n%s", err, simOut)
	default:
	}
	t.Logf("browser suite passed; whole test %s", time.Since(began).Round(time.Second))
}

// browserPrerequisites returns the Chromium and npm to run the suite
// with. What is missing (the dashboard's build, Chromium, npm, web's
// node_modules) fails the test where the services are required, as in
// `make test` and CI, and skips it elsewhere, saying how to get it.
func browserPrerequisites(t *testing.T, root string) (chromium, npm string) {
	t.Helper()
	var missing []string
	index := filepath.Join(root, "adapters", "dashboard", "static", "app", "index.html")
	if _, err := os.Stat(index); err != nil {
		missing = append(missing, fmt.Sprintf("the dashboard's build, %s (make web)", index))
	}
	chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if chromium, err = exec.LookPath("chromium"); err != nil {
			missing = append(missing, "Chromium, /usr/bin/chromium or chromium on PATH (apt-get install chromium)")
		}
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing = append(missing, "npm on PATH (Node.js)")
	}
	playwright := filepath.Join(root, "web", "node_modules", "playwright-core", "package.json")
	if _, err := os.Stat(playwright); err != nil {
		missing = append(missing, fmt.Sprintf("web's node modules, playwright-core among them: %s (npm --prefix web ci)", playwright))
	}
	if len(missing) > 0 {
		msg := "the dashboard's browser tests need " + strings.Join(missing, "; ")
		if testenv.FromEnv(os.LookupEnv).Require {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, npm
}

// servesBuild checks the premise that the binary under test embeds the
// dashboard's build rather than the page that says how to make one: a
// binary built before `make web` would fail the whole suite with a less
// clear message.
func servesBuild(t *testing.T, d *tmsproc.Deployment, root string) {
	t.Helper()
	resp, err := http.Get("http://" + d.HTTPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`type="module"`)) {
		t.Fatalf("GET / answers %d without the dashboard's build (a module script), though %s exists: "+
			"was tms built before `make web`?\n%s", resp.StatusCode,
			filepath.Join(root, "adapters", "dashboard", "static", "app", "index.html"), body)
	}
}

// testLines writes what it is given to the test log, a line at a time,
// as it comes (go test -v shows it live).
type testLines struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *testLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// Flush logs a last line that had no newline.
func (w *testLines) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.t.Log(w.prefix + string(w.buf))
		w.buf = nil
	}
}
