// Package tmsproc runs the tms binary as its users do, for end-to-end
// tests and benchmarks: built from cmd/tms, started as a separate process
// in a deployment of its own (a fresh database, a Kafka namespace, an MQTT
// topic and client id of its own, on the services testenv provides),
// waited on until /readyz answers, and stopped with SIGTERM or killed with
// SIGKILL. One-off commands (`tms replay ...`) run in the same deployment
// through Command.
package tmsproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections"
)

// Build compiles cmd/tms into dir and returns the binary's path. It finds
// the module from the working directory, as `go build` does.
func Build(dir string) (string, error) {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	bin := filepath.Join(dir, "tms")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tms")
	build.Dir = strings.TrimSpace(string(root))
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tms: %w\n%s", err, out)
	}
	return bin, nil
}

// Tokens the deployment's API accepts.
const (
	ViewerToken   = "tmsproc-viewer-token"
	OperatorToken = "tmsproc-operator-token"
)

// Deployment is one tms installation: its services, its names in them,
// and the process currently running it.
type Deployment struct {
	t      testing.TB
	binary string
	// Kafka is the deployment's Kafka config (its namespace included).
	Kafka *kafka.Config
	// Pool reads the deployment's read models.
	Pool *pgxpool.Pool
	// MQTTURL and Topic are where the deployment's feed comes from.
	MQTTURL, Topic string
	// HTTPAddr is where its API listens.
	HTTPAddr string
	env      []string
	logs     *lockedBuffer
	// mu guards the process: Start, Stop and Kill may be called from a
	// control server's goroutines as well as the test's.
	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
}

// New prepares a deployment of binary on svc's services; Start runs it.
// extraEnv (KEY=value) is added to its environment.
func New(t testing.TB, svc testenv.Services, binary string, extraEnv ...string) *Deployment {
	t.Helper()
	d := &Deployment{
		t:        t,
		binary:   binary,
		Kafka:    svc.Kafka(t),
		MQTTURL:  svc.MQTT(t),
		Topic:    testenv.Name("g7") + "/positions",
		HTTPAddr: freeAddr(t),
		logs:     &lockedBuffer{},
	}
	dbURL := svc.Postgres(t)
	pool, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	d.Pool = pool
	d.env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"KAFKA_BROKERS="+strings.Join(d.Kafka.Brokers, ","),
		"TMS_KAFKA_NAMESPACE="+d.Kafka.Namespace,
		"TMS_KAFKA_PARTITIONS="+fmt.Sprint(d.Kafka.Partitions),
		"TMS_INSTANCE_ID="+testenv.Name("tms"),
		"MQTT_URL="+d.MQTTURL,
		"G7_MQTT_POSITION_TOPIC="+d.Topic,
		"G7_MQTT_POSITION_CLIENT_ID="+testenv.Name("tms-ingest"),
		"TMS_HTTP_ADDR="+d.HTTPAddr,
		"TMS_API_TOKENS="+ViewerToken+":viewer,"+OperatorToken+":operator",
		"TMS_DATA_DIR="+t.TempDir(),
		"TMS_LOG_LEVEL=warn",
	)
	// Services that require TLS and SASL (testenv.Services.Secured):
	// tms gets their CA and credentials through its own settings.
	if svc.KafkaCAFile != "" {
		d.env = append(d.env, "KAFKA_TLS_CA_FILE="+svc.KafkaCAFile)
	}
	if s := svc.KafkaSASL; s != nil {
		d.env = append(d.env, "KAFKA_SASL_MECHANISM="+s.Mechanism, "KAFKA_SASL_USERNAME="+s.Username, "KAFKA_SASL_PASSWORD="+s.Password)
	}
	if svc.MQTTCAFile != "" {
		d.env = append(d.env, "MQTT_TLS_CA_FILE="+svc.MQTTCAFile)
	}
	d.env = append(d.env, extraEnv...)
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() {
			t.Logf("tms output:\n%s", d.logs.String())
		}
	})
	return d
}

// Instance returns another `tms serve` process of the same deployment, as
// a second machine would run it: the same database, Kafka namespace, MQTT
// broker and feed topic and tokens, with its own HTTP address,
// TMS_INSTANCE_ID, MQTT client id, data dir and output (printed, prefixed
// by name, when the test fails). extraEnv (KEY=value) comes on top, e.g.
// TMS_ROLES=ingest,geofence. Start, Stop and Kill run it as they run d.
func (d *Deployment) Instance(name string, extraEnv ...string) *Deployment {
	d.t.Helper()
	i := &Deployment{
		t: d.t, binary: d.binary, Kafka: d.Kafka, Pool: d.Pool, MQTTURL: d.MQTTURL, Topic: d.Topic,
		HTTPAddr: freeAddr(d.t), logs: &lockedBuffer{},
	}
	// exec takes the last of duplicate keys: these override d's.
	i.env = append(slices.Clone(d.env),
		"TMS_HTTP_ADDR="+i.HTTPAddr,
		"TMS_INSTANCE_ID="+testenv.Name("tms-"+name),
		"G7_MQTT_POSITION_CLIENT_ID="+testenv.Name("tms-ingest-"+name),
		"TMS_DATA_DIR="+d.t.TempDir(),
	)
	i.env = append(i.env, extraEnv...)
	d.t.Cleanup(func() {
		i.Kill()
		if d.t.Failed() {
			d.t.Logf("tms output of instance %s:\n%s", name, i.logs.String())
		}
	})
	return i
}

// Start runs `tms serve` and waits until /readyz says it is ready. A
// deployment may be started again after Stop or Kill: on the same address,
// database, Kafka namespace, topic and data dir.
func (d *Deployment) Start() {
	d.t.Helper()
	if err := d.TryStart(context.Background()); err != nil {
		d.t.Fatal(err)
	}
}

// startTimeout bounds a start, from exec to /readyz's 200.
const startTimeout = 60 * time.Second

// TryStart is Start for callers on other goroutines than the test's (a
// control server's handlers, say), where the test cannot be failed: it
// returns what went wrong instead, the process's output included, and
// gives up when ctx ends. Starting a running deployment is an error.
func (d *Deployment) TryStart(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.launchLocked(); err != nil {
		return err
	}
	exited := d.exited
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := client.Get("http://" + d.HTTPAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			d.proc = nil
			return fmt.Errorf("tmsproc: tms exited during start-up:\n%s", d.logs.String())
		case <-ctx.Done():
			// Left running, the process is Kill's (and the test
			// cleanup's) to end.
			return fmt.Errorf("tmsproc: tms not ready within %s (%w):\n%s", startTimeout, context.Cause(ctx), d.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Launch runs `tms serve` without waiting for it to be ready: for tests
// of a tms that must keep running while it cannot be (Kafka refusing its
// credentials). Stop and Kill end it as one Start ran.
func (d *Deployment) Launch() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.launchLocked(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *Deployment) launchLocked() error {
	if d.proc != nil {
		return errors.New("tmsproc: tms serve is already running")
	}
	cmd := exec.Command(d.binary, "serve")
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("tmsproc: start tms serve: %w", err)
	}
	exited := make(chan struct{})
	d.proc, d.exited = cmd, exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return nil
}

// Output returns what the processes of the deployment printed so far
// (stdout and stderr), for tests of what tms says.
func (d *Deployment) Output() string { return d.logs.String() }

// Command returns a one-off run of the tms binary with args (`replay
// geofence ...`, `migrate`) in the deployment's environment: its
// database, Kafka namespace, MQTT topic, tokens and data dir, as Start
// gives `tms serve`. The caller runs it (Output, CombinedOutput...); it is
// not the serving process that Start, Stop and Kill manage, and may run
// beside it. ctx bounds it: when ctx is done, the command is killed.
func (d *Deployment) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.binary, args...)
	cmd.Env = slices.Clone(d.env)
	return cmd
}

// Exited reports whether the process Start ran has ended since, by
// itself or killed: a test that must prove tms never stopped asks it.
func (d *Deployment) Exited() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// Kill ends the process with SIGKILL: no shutdown code runs.
func (d *Deployment) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return
	}
	_ = d.proc.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.proc = nil
}

// Stop ends the process with SIGTERM and expects a clean exit.
func (d *Deployment) Stop() {
	d.t.Helper()
	if err := d.TryStop(context.Background()); err != nil {
		d.t.Fatal(err)
	}
}

// stopTimeout bounds a stop, from SIGTERM to the process's exit.
const stopTimeout = 30 * time.Second

// TryStop is Stop for callers on other goroutines than the test's: it
// returns what went wrong instead of failing the test. Stopping a
// deployment that is not running is an error. When ctx ends first, the
// process is killed.
func (d *Deployment) TryStop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return errors.New("tmsproc: tms serve is not running")
	}
	proc := d.proc
	d.proc = nil
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("tmsproc: SIGTERM to tms: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-d.exited:
	case <-timer.C:
		// SIGQUIT makes the Go runtime print every goroutine's stack to the
		// logs that the test prints when it fails: what tms was stuck on.
		_ = proc.Process.Signal(syscall.SIGQUIT)
		<-d.exited
		return fmt.Errorf("tmsproc: tms did not stop within %s of SIGTERM (its goroutines are in its output)", stopTimeout)
	case <-ctx.Done():
		_ = proc.Process.Signal(syscall.SIGKILL)
		<-d.exited
		return fmt.Errorf("tmsproc: stopping tms: %w", context.Cause(ctx))
	}
	if code := proc.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("tmsproc: tms exited with %d after SIGTERM:\n%s", code, d.logs.String())
	}
	return nil
}

// Get calls the API with the viewer token, decodes a 200 answer into
// into, and returns the status.
func (d *Deployment) Get(path string, into any) int {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.HTTPAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+ViewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			d.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// Count runs a counting query on the read models.
func (d *Deployment) Count(sql string, args ...any) int64 {
	d.t.Helper()
	var n int64
	if err := d.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	return n
}

// WaitProjectorCaughtUp waits until the vehicles projector has committed
// everything the positions topic holds now.
func (d *Deployment) WaitProjectorCaughtUp(timeout time.Duration) {
	d.t.Helper()
	adm, err := d.Kafka.NewAdmin("tmsproc-admin")
	if err != nil {
		d.t.Fatal(err)
	}
	defer adm.Close()
	topic := d.Kafka.Topic(event.TopicPositions)
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		d.t.Fatal(err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	Eventually(d.t, timeout, fmt.Sprintf("projector at the end of %s (%d records)", topic, end), func() bool {
		return d.Count(`SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE topic = $1`, topic) >= end
	})
}

// ProjectorsBehind says which registered projection (projections.All)
// has not committed everything its topics hold for read_committed
// readers, and where it is; "" when every one is at the end.
func (d *Deployment) ProjectorsBehind() string {
	d.t.Helper()
	adm, err := d.Kafka.NewAdmin("tmsproc-admin")
	if err != nil {
		d.t.Fatal(err)
	}
	defer adm.Close()
	for _, r := range projections.All() {
		var topics []string
		for _, topic := range r.Topics {
			topics = append(topics, d.Kafka.Topic(topic))
		}
		ends, err := adm.ListCommittedOffsets(context.Background(), topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			d.t.Fatal(err)
		}
		var end int64
		ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
		at := d.Count(`SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = ANY($2)`, r.Name, topics)
		if at != end {
			return fmt.Sprintf("%s is at %d of %d", r.Name, at, end)
		}
	}
	return ""
}

// Eventually polls cond until it holds and fails the test after timeout.
// It synchronises on the state under test, not on the passing of time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
