package e2e

// The fault tests of issue 11's exit policy (docs/reliability.md): tms on
// the three-node cluster of `services.sh --cluster`, with Kafka nodes
// killed under it while fixes stream in. They need that cluster: run them
// with `make chaos`.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// cluster is the services' Kafka cluster: where services.sh keeps its
// state, to stop and start nodes.
type cluster struct {
	t     *testing.T
	state string
}

func needCluster(t *testing.T) cluster {
	t.Helper()
	if os.Getenv("TMS_SERVICES_KAFKA_NODES") != "3" || os.Getenv("TMS_SERVICES_STATE") == "" {
		t.Skip("needs the three-node cluster of deploy/test/services.sh --cluster (make chaos)")
	}
	return cluster{t: t, state: os.Getenv("TMS_SERVICES_STATE")}
}

// node runs services.sh kafka-<what> on node i.
func (c cluster) node(what string, i int32) {
	c.t.Helper()
	out, err := exec.Command("bash", filepath.Join("..", "deploy", "test", "services.sh"),
		"kafka-"+what, c.state, fmt.Sprint(i)).CombinedOutput()
	if err != nil {
		c.t.Fatalf("services.sh kafka-%s %d: %v\n%s", what, i, err, out)
	}
	if what != "start" {
		// A test that fails half-way leaves the cluster whole for the next.
		c.t.Cleanup(func() {
			if _, err := os.Stat(filepath.Join(c.state, fmt.Sprintf("kafka%d.pid", i))); err == nil {
				return // started again by the test
			}
			if out, err := exec.Command("bash", filepath.Join("..", "deploy", "test", "services.sh"),
				"kafka-start", c.state, fmt.Sprint(i)).CombinedOutput(); err != nil {
				c.t.Errorf("starting node %d again: %v\n%s", i, err, out)
			}
		})
	}
}

// positionsLeaders counts the partitions of the deployment's positions
// topic that each node leads.
func positionsLeaders(t *testing.T, d *tmsproc.Deployment) map[int32]int {
	t.Helper()
	adm, err := d.Kafka.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topic := d.Kafka.Topic(event.TopicPositions)
	details, err := adm.ListTopics(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for _, p := range details[topic].Partitions {
		leaders[p.Leader]++
	}
	return leaders
}

// deadLetterCount is how many records the deployment's dead-letter topic holds.
func deadLetterCount(t *testing.T, d *tmsproc.Deployment) int64 {
	t.Helper()
	adm, err := d.Kafka.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(t.Context(), d.Kafka.Topic(event.TopicDeadLetter))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// watchExit fails the test as soon as tms exits by itself.
func watchExit(t *testing.T, d *tmsproc.Deployment) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if d.Exited() {
				t.Errorf("tms exited while Kafka was disturbed")
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// scrape reads one unlabelled metric; ok is false when /metrics did not
// answer with it.
func scrape(d *tmsproc.Deployment, name string) (float64, bool) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.HTTPAddr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func readyz(d *tmsproc.Deployment) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.HTTPAddr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// exactlyOnce checks that the history holds each of n published fixes
// once: as many rows as fixes, and as many distinct ids (a fix's event id
// is its plate and fix time, see domain/event).
func exactlyOnce(t *testing.T, d *tmsproc.Deployment, n int64) {
	t.Helper()
	var stored int64 = -1
	tmsproc.Eventually(t, 3*time.Minute, "every published position stored", func() bool {
		was := stored
		stored = d.Count(`SELECT count(*) FROM positions`)
		if stored < n && stored != was {
			// What a failure needs: how short, and whether the projectors
			// think they are done (a gap, not a lag).
			t.Logf("%d of %d published positions stored; projectors behind: %q", stored, n, d.ProjectorsBehind())
		}
		return stored >= n
	})
	d.WaitProjectorCaughtUp(2 * time.Minute)
	rows := d.Count(`SELECT count(*) FROM positions`)
	distinct := d.Count(`SELECT count(DISTINCT (plate, fix_time)) FROM positions`)
	if rows != n || distinct != n {
		t.Errorf("history: %d rows, %d distinct fixes; want %d each (none lost, none doubled)", rows, distinct, n)
	}
}

// TestClusterLeaderKilled: SIGKILL the node that leads the most
// tms.positions partitions while fixes stream in, then start it again.
// tms never exits, /readyz is 200 again, and every published position is
// in the history exactly once.
func TestClusterLeaderKilled(t *testing.T) {
	c := needCluster(t)
	// The test asks /readyz and /metrics often: no per-address limit.
	d := newDeployment(t, "TMS_HTTP_ADDRESS_RATE=1000", "TMS_HTTP_ADDRESS_BURST=1000")
	d.Start()
	stopWatch := watchExit(t, d)
	createStation(t, d)
	f := startFleet(t, d, 100) // 200 fixes/s, in and out of a station
	stationKnown(t, f, d)
	tmsproc.Eventually(t, time.Minute, "positions flowing", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) >= 400
	})
	leaders := positionsLeaders(t, d)
	var victim int32
	for n, count := range leaders {
		if victim == 0 || count > leaders[victim] {
			victim = n
		}
	}
	t.Logf("positions partitions led by node: %v; killing node %d", leaders, victim)
	killedAt := time.Now()
	c.node("kill", victim)
	atKill := f.published()
	// Positions keep flowing on the two nodes left (replication 3, min ISR 2).
	tmsproc.Eventually(t, 2*time.Minute, "positions stored after the kill", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) >= atKill+400
	})
	flowing := time.Since(killedAt)
	c.node("start", victim)
	restartedAt := time.Now()
	tmsproc.Eventually(t, 2*time.Minute, "/readyz 200 after the node came back", func() bool {
		return readyz(d) == http.StatusOK
	})
	ready := time.Since(restartedAt)
	n := f.finish(t)
	finishedAt := time.Now()
	o := checkOutcome(t, d, f, n)
	stopWatch()
	t.Logf("measured: %d positions at 200/s, %d visits; stored again %s after the kill (%d more); ready %s after the restart; checks held %s after the last publish; %d copies in tms.positions",
		n, f.visits()*int64(f.vehicles), flowing.Round(time.Millisecond), 400, ready.Round(time.Millisecond),
		time.Since(finishedAt).Round(time.Millisecond), o.kafkaCopies)
	d.Stop()
}

// TestClusterTwoNodesDown: two of three nodes down for longer than the
// consumer groups' session timeout (45 s, franz-go's default), then
// started again. Meanwhile Kafka refuses every write (one replica left,
// min ISR 2, and no controller quorum): ingest holds its MQTT
// acknowledgements (messages unacked, nothing dead-lettered), /readyz says
// not ready, and tms never exits. Afterwards it catches up: every
// position in the history exactly once.
func TestClusterTwoNodesDown(t *testing.T) {
	c := needCluster(t)
	// The test asks /readyz and /metrics often: no per-address limit.
	d := newDeployment(t, "TMS_HTTP_ADDRESS_RATE=1000", "TMS_HTTP_ADDRESS_BURST=1000")
	d.Start()
	stopWatch := watchExit(t, d)
	createStation(t, d)
	f := startFleet(t, d, 100)
	stationKnown(t, f, d)
	tmsproc.Eventually(t, time.Minute, "positions flowing", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) >= 400
	})
	downAt := time.Now()
	c.node("kill", 2)
	c.node("kill", 3)
	const sessionTimeout = 45 * time.Second
	var notReady, held bool
	tmsproc.Eventually(t, 3*time.Minute, "an outage longer than the session timeout, seen by /readyz and ingest", func() bool {
		if readyz(d) == http.StatusServiceUnavailable {
			notReady = true
		}
		if v, ok := scrape(d, "tms_ingest_messages_unacked"); ok && v > 0 {
			held = true
		}
		return notReady && held && time.Since(downAt) > sessionTimeout+5*time.Second
	})
	storedDuring := d.Count(`SELECT count(*) FROM positions`)
	publishedDuring := f.published()
	if storedDuring >= publishedDuring {
		t.Fatalf("%d stored of %d published while two nodes were down: Kafka did not refuse writes, the test proves nothing",
			storedDuring, publishedDuring)
	}
	// Whatever ingest dead-lettered meanwhile would be in the topic once
	// the nodes are back: checked at the end.
	c.node("start", 2)
	c.node("start", 3)
	upAt := time.Now()
	tmsproc.Eventually(t, 3*time.Minute, "/readyz 200 after the nodes came back", func() bool {
		return readyz(d) == http.StatusOK
	})
	ready := time.Since(upAt)
	n := f.finish(t)
	o := checkOutcome(t, d, f, n)
	caughtUp := time.Since(upAt)
	stopWatch()
	t.Logf("measured: %d positions at 200/s, %d visits; two nodes down %s; ready %s and every check held %s after they came back; %d copies in tms.positions",
		n, f.visits()*int64(f.vehicles), upAt.Sub(downAt).Round(time.Millisecond), ready.Round(time.Millisecond),
		caughtUp.Round(time.Millisecond), o.kafkaCopies)
	d.Stop()
}
