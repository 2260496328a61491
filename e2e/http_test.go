package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// publisher connects a plain paho client to the deployment's broker and
// returns a function that publishes one G7 position of plate.
func publisher(t *testing.T, d *tmsproc.Deployment) func(plate string, at time.Time) {
	t.Helper()
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("publisher")))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(0) })
	return func(plate string, at time.Time) {
		msg := fmt.Sprintf(`{"data":[{"plateNum":%q,"lng":121.4,"lat":31.2,"speed":30,"gps_time":%d}]}`, plate, at.UnixMilli())
		if tok := pub.Publish(d.Topic, 1, false, msg); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Errorf("publish %s: %v (a timed-out token is a failure)", plate, tok.Error())
		}
	}
}

// requireOpenFiles fails the test when this process cannot open n files:
// Go raises the soft RLIMIT_NOFILE to the hard one at start, so the hard
// limit is what counts.
func requireOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < n {
		t.Fatalf("this test opens about %d connections, but the process may open only %d files (hard limit %d): "+
			"raise it (ulimit -Hn, or LimitNOFILE in systemd) and run again", n, lim.Cur, lim.Max)
	}
}

// readinessRuns reads tms_http_readiness_runs_total from /metrics, which
// is open but rate-limited by address: a 429 is waited out.
func readinessRuns(t *testing.T, d *tmsproc.Deployment) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^tms_http_readiness_runs_total (\d+)`)
	var runs int
	tmsproc.Eventually(t, 30*time.Second, "/metrics answered with tms_http_readiness_runs_total", func() bool {
		resp, err := http.Get("http://" + d.HTTPAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := re.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			return false
		}
		runs, _ = strconv.Atoi(string(m[1]))
		return true
	})
	return runs
}

// TestHostileHTTPSlowClientsAndReadyzFloodDoNotStarveTheAPI: while 1,000
// connections trickle their headers a byte a second (reconnecting when cut
// off, as an attacker would) and another client floods /readyz from the
// same address over 32 connections, an authenticated client's GET
// /api/v1/vehicles keeps a p99 under 100 ms, /readyz probes the
// dependencies at most once a second, and positions published meanwhile
// reach the API.
//
// The attackers run in a process of their own (this test binary, started
// by attack) at the lowest CPU priority: on this one machine, that stands
// for their own machines, so that what is measured is what the attack
// costs tms, not what making it costs the attacker.
func TestHostileHTTPSlowClientsAndReadyzFloodDoNotStarveTheAPI(t *testing.T) {
	const requests = 300
	requireOpenFiles(t, 2*tricklers+500)
	d := newDeployment(t)
	d.Start()
	publish := publisher(t, d)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 50 {
		publish(fmt.Sprintf("沪H%05d", i), t0)
	}
	tmsproc.Eventually(t, 30*time.Second, "the fleet in the API", func() bool {
		return d.Count(`SELECT count(*) FROM vehicles`) == 50
	})
	runsBefore := readinessRuns(t, d)

	a := attack(t, d.HTTPAddr)
	// The client that must not notice: paced requests, while positions
	// keep coming in.
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	var latencies []time.Duration
	var during []string
	for i := range requests {
		<-pace.C
		if i%20 == 0 {
			plate := fmt.Sprintf("沪J%05d", i)
			publish(plate, t0.Add(time.Minute))
			during = append(during, plate)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.HTTPAddr+"/api/v1/vehicles?limit=100", nil)
		req.Header.Set("Authorization", "Bearer "+tmsproc.ViewerToken)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		latencies = append(latencies, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	// The projector kept up: what was published during the attack is in
	// the API while the attack goes on.
	for _, plate := range during {
		tmsproc.Eventually(t, 10*time.Second, plate+" (published during the attack) in the API", func() bool {
			req, _ := http.NewRequest(http.MethodGet, "http://"+d.HTTPAddr+"/api/v1/vehicles/"+url.PathEscape(plate), nil)
			req.Header.Set("Authorization", "Bearer "+tmsproc.ViewerToken)
			resp, err := client.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	report := a.stop(t)

	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1)+0.5)] }
	t.Logf("GET /api/v1/vehicles under attack, %d requests: p50 %s, p90 %s, p99 %s, max %s",
		len(latencies), pct(0.5), pct(0.9), pct(0.99), latencies[len(latencies)-1])
	t.Logf("the attack: %s", report.String())
	if p99 := pct(0.99); p99 >= 100*time.Millisecond {
		t.Errorf("p99 %s, want under 100 ms", p99)
	}
	if report.OpenAtEnd < tricklers*9/10 {
		t.Errorf("only %d trickling connections open at the end: the attack did not hold", report.OpenAtEnd)
	}
	if report.Floods == 0 {
		t.Error("the /readyz flood sent nothing")
	}
	runs := readinessRuns(t, d) - runsBefore
	// One per second of flood, one at its start, and the one the metrics
	// read after it may have followed.
	if maxRuns := int(report.Duration/time.Second) + 2; runs > maxRuns {
		t.Errorf("/readyz probed its dependencies %d times in %s of flood, want at most %d", runs, report.Duration, maxRuns)
	}
	t.Logf("/readyz probed its dependencies %d times", runs)
}

// The attack's size.
const (
	tricklers = 1000
	flooders  = 32
)

// attackerEnv, set to tms's HTTP address, makes this test binary the
// attacker (see TestMain).
const attackerEnv = "TMS_E2E_ATTACK"

// attackReport is what the attacker did, as it prints it at the end.
type attackReport struct {
	Connects, Cut, OpenAtEnd int64
	Floods                   int64
	Statuses                 map[int]int64
	Duration                 time.Duration
}

func (r attackReport) String() string {
	return fmt.Sprintf("%d trickling connections (%d connects, %d cut off by the server, %d open at the end); "+
		"/readyz flooded over %d connections for %s: %d requests, by status %v",
		tricklers, r.Connects, r.Cut, r.OpenAtEnd, flooders, r.Duration.Round(time.Millisecond), r.Floods, r.Statuses)
}

// runningAttack is the attacker process.
type runningAttack struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// attack starts the attacker process against addr at the lowest CPU
// priority and returns once its slow connections are all open and its
// flood has begun.
func attack(t *testing.T, addr string) *runningAttack {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nice", "-n", "19", self)
	cmd.Env = append(os.Environ(), attackerEnv+"="+addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &runningAttack{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := a.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "attacking" {
		t.Fatalf("the attacker did not start: %q %v", line, err)
	}
	return a
}

// stop ends the attack and returns its report.
func (a *runningAttack) stop(t *testing.T) attackReport {
	t.Helper()
	a.stdin.Close()
	var r attackReport
	if err := json.NewDecoder(a.out).Decode(&r); err != nil {
		t.Fatalf("the attacker's report: %v", err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("the attacker: %v", err)
	}
	return r
}

// attacker is the attacker process's main: it holds tricklers slow
// connections and floods /readyz at addr, says "attacking" once all the
// slow connections are open, and stops when its standard input closes,
// printing its report as JSON.
func attacker(addr string) int {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var open, cut atomic.Int64
	for range tricklers {
		wg.Go(func() { trickle(ctx, addr, &open, &cut) })
	}
	for open.Load() < tricklers {
		time.Sleep(10 * time.Millisecond)
	}
	var mu sync.Mutex
	statuses := map[int]int64{}
	var floods atomic.Int64
	start := time.Now()
	for range flooders {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				floods.Add(1)
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	fmt.Println("attacking")
	_, _ = io.Copy(io.Discard, os.Stdin)
	openAtEnd := open.Load()
	stop()
	wg.Wait()
	r := attackReport{Connects: openAtEnd + cut.Load(), Cut: cut.Load(), OpenAtEnd: openAtEnd,
		Floods: floods.Load(), Statuses: statuses, Duration: time.Since(start)}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

// trickle holds a connection that sends a request header a byte a second,
// never finishing it, and opens another when the server cuts it off,
// until ctx ends.
func trickle(ctx context.Context, addr string, open, cut *atomic.Int64) {
	header := "GET /api/v1/vehicles HTTP/1.1\r\nHost: tms\r\nX-Slow: " + strings.Repeat("a", 1<<16)
	var dialer net.Dialer
	for ctx.Err() == nil {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			continue
		}
		open.Add(1)
		closed := make(chan struct{})
		go func() { // the server's close shows as the end of reading
			_, _ = io.Copy(io.Discard, c)
			close(closed)
		}()
		tick := time.NewTicker(time.Second)
	bytes:
		for i := 0; ; i++ {
			if _, err := c.Write([]byte{header[i%len(header)]}); err != nil {
				break
			}
			select {
			case <-tick.C:
			case <-closed:
				break bytes
			case <-ctx.Done():
				break bytes
			}
		}
		tick.Stop()
		c.Close()
		<-closed
		open.Add(-1)
		if ctx.Err() == nil {
			cut.Add(1)
		}
	}
}

// TestHostileAPIPoolSaturatedProjectorKeepsUp: with every connection of
// the API's database pool held by slow queries, positions keep being
// projected, because the projectors have a pool of their own; once the
// queries end, the API shows them.
func TestHostileAPIPoolSaturatedProjectorKeepsUp(t *testing.T) {
	t.Parallel()
	const apiConns = 4
	// A pool this small holds one simplified track (two connections) and
	// one export at a time, as the settings must say.
	d := newDeployment(t, "TMS_POSTGRES_API_MAX_CONNS="+strconv.Itoa(apiConns), "TMS_TRACK_MAX_CONCURRENT=1",
		"TMS_EXPORT_MAX_CONCURRENT=1")
	d.Start()
	publish := publisher(t, d)

	// Slow queries: GET /api/v1/replays waits on a lock the test holds
	// on replay_runs, a table the API reads and no projector writes.
	ctx := t.Context()
	lock, err := d.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(ctx, `LOCK TABLE replay_runs IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	flood, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	for range 3 * apiConns {
		wg.Go(func() {
			for flood.Err() == nil {
				req, _ := http.NewRequestWithContext(flood, http.MethodGet, "http://"+d.HTTPAddr+"/api/v1/replays", nil)
				req.Header.Set("Authorization", "Bearer "+tmsproc.ViewerToken)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	// The premise, asserted: every connection of the API's pool is
	// waiting on the lock.
	waiting := func() int64 {
		return d.Count(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'tms-api' AND wait_event_type = 'Lock'`)
	}
	tmsproc.Eventually(t, 30*time.Second, fmt.Sprintf("the API's %d connections all waiting on slow queries", apiConns), func() bool {
		return waiting() == apiConns
	})

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var plates []string
	for i := range 20 {
		plates = append(plates, fmt.Sprintf("沪P%05d", i))
		publish(plates[i], t0)
	}
	tmsproc.Eventually(t, 20*time.Second, "positions projected while the API's pool is saturated", func() bool {
		return d.Count(`SELECT count(*) FROM vehicles WHERE plate = ANY($1)`, plates) == int64(len(plates))
	})
	if n := waiting(); n != apiConns {
		t.Fatalf("%d of the API's connections still waiting once the positions were projected, want %d: "+
			"the test no longer proves they were projected beside a saturated pool", n, apiConns)
	}

	// The queries end; the API shows what was projected meanwhile.
	stop()
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, plate := range plates {
		tmsproc.Eventually(t, 15*time.Second, plate+" in the API", func() bool {
			return d.Get("/api/v1/vehicles/"+url.PathEscape(plate), nil) == http.StatusOK
		})
	}
}

// TestHTTPTimeoutsSpareTheWebSocket: the server's read and write
// timeouts bound requests, not WebSocket sessions, which outlive them.
func TestHTTPTimeoutsSpareTheWebSocket(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_HTTP_READ_HEADER_TIMEOUT=200ms", "TMS_HTTP_READ_TIMEOUT=300ms", "TMS_HTTP_WRITE_TIMEOUT=300ms")
	d.Start()
	publish := publisher(t, d)
	ws := subscribe(d, t, `{"subscribe":{"vehicles":["沪W00001"]}}`)
	// Outlive both timeouts several times over before anything is pushed.
	time.Sleep(1500 * time.Millisecond)
	publish("沪W00001", time.Now().Add(-time.Minute).Truncate(time.Second))
	if got := ws.positions(t, 1); len(got) != 1 || !strings.HasPrefix(got[0], "沪W00001@") {
		t.Errorf("pushed %v", got)
	}
}
