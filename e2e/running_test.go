package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/fleettest"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// freePort is a port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// syncWriter collects a process's output (stdout and stderr at once).
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCommandsFindARunningServe is `make run` and then other tms commands
// in another shell: `tms serve` runs everything embedded (Kafka, MQTT, a
// local Postgres) in a directory, and `tms replay geofence` and `tms
// rebuild`, run from the same directory with no setting at all (no
// KAFKA_BROKERS, no DATABASE_URL, not even the ports serve was given),
// work against it: they find its broker and database by the data dir.
// Before, such a command started an embedded broker and Postgres of its
// own on the default addresses: the broker failed on a busy port, or came
// up empty beside serve's, and the database was not found.
func TestCommandsFindARunningServe(t *testing.T) {
	t.Parallel()
	// The local Postgres runs as the postgres user (tms runs as root
	// here), which must be able to enter the directory.
	dir, err := os.MkdirTemp("", "tms-make-run-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bare := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	httpAddr := "127.0.0.1:" + freePort(t)
	serve := exec.Command(binary, "serve")
	serve.Dir = dir
	serve.Env = append(bare, "TMS_KAFKA_LISTEN=127.0.0.1:"+freePort(t), "TMS_MQTT_LISTEN=127.0.0.1:"+freePort(t),
		"TMS_POSTGRES_PORT="+freePort(t), "TMS_HTTP_ADDR="+httpAddr, "TMS_LOG_LEVEL=warn")
	logs := &syncWriter{}
	serve.Stdout, serve.Stderr = logs, logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = serve.Wait(); close(exited) }()
	t.Cleanup(func() {
		// A clean stop, which stops the local Postgres too.
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("tms serve output:\n%s", logs.String())
		}
	})
	tmsproc.Eventually(t, 2*time.Minute, "tms serve ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("tms serve exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// What serve says it runs: 0600, it holds the database's password.
	record := filepath.Join(dir, "data", "serve.json")
	fi, err := os.Stat(record)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", record, fi.Mode().Perm())
	}
	var running struct {
		KafkaBrokers []string `json:"kafka_brokers"`
		DatabaseURL  string   `json:"database_url"`
	}
	raw, _ := os.ReadFile(record)
	if err := json.Unmarshal(raw, &running); err != nil || len(running.KafkaBrokers) == 0 || running.DatabaseURL == "" {
		t.Fatalf("%s: %v: %s", record, err, raw)
	}
	kc := &kafka.Config{Brokers: running.KafkaBrokers}
	kc.SetDefaults()
	w := fleettest.New(t, 6, 120)
	want := w.Expected(t, geofence.Config{ReorderWindow: geofence.DefaultReorderWindow})
	fleettest.Produce(t, kc, w.StationRecords(t, kc))
	fleettest.Produce(t, kc, fleettest.PositionRecords(t, kc, w.Fixes))
	fleettest.ReadGeofence(t, kc, fleettest.Count(want), 2*time.Minute)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	command := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Dir, cmd.Env = dir, bare
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tms %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := command("replay", "geofence", "--station", "LOAD",
		"--from", fleettest.T0.Add(-time.Hour).Format(time.RFC3339), "--to", fleettest.T0.Add(3*time.Hour).Format(time.RFC3339))
	if strings.Contains(out, " 0 fixes read") || strings.Contains(out, " 0 visits") || !strings.Contains(out, "visits by") {
		t.Errorf("tms replay geofence found no fixes or visits in the running serve's topics:\n%s", out)
	}
	out = command("rebuild", "--progress", "none")
	if !strings.Contains(out, "switched over") {
		t.Errorf("tms rebuild did not switch over:\n%s", out)
	}
	token, err := os.ReadFile(filepath.Join(dir, "data", "api-tokens", "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/api/v1/rebuilds", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rebuilds rebuildsJSON
	if err := json.NewDecoder(resp.Body).Decode(&rebuilds); err != nil || len(rebuilds.Rebuilds) != 1 || rebuilds.Rebuilds[0].State != "done" {
		t.Errorf("GET /api/v1/rebuilds from serve after tms rebuild: %d, %v, %+v; want one rebuild, done", resp.StatusCode, err, rebuilds)
	}

	_ = serve.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("tms serve did not stop within 30 s")
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("%s is still there after tms serve stopped (%v)", record, err)
	}
}
