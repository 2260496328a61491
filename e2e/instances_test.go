package e2e

// Issue 11, parts 2 and 3: several `tms serve` instances on the three-node
// cluster, and the fault suite (docs/reliability.md, "Fault suite"). Every
// scenario drives a fleet of known geometry at a steady rate, disturbs
// something, and then checks the same things: every published position is
// in tms.positions (none lost) and in the history exactly once; the
// geofence events are those the fleet's geometry calls for, each once;
// no consumer group is left behind; recovery times are logged. They need
// the cluster and restart shared services: run them with `make chaos`.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// service runs services.sh <what> <statedir>: pg-restart or
// mosquitto-restart.
func (c cluster) service(what string) {
	c.t.Helper()
	out, err := exec.Command("bash", filepath.Join("..", "deploy", "test", "services.sh"), what, c.state).CombinedOutput()
	if err != nil {
		c.t.Fatalf("services.sh %s: %v\n%s", what, err, out)
	}
}

// The fleet's station: a circle every vehicle drives in and out of.
const (
	fleetStation = "SCHAOS"
	fleetLat     = 31.2
	fleetLng     = 121.4
	// fleetBlock is how many fixes a vehicle spends inside, then outside,
	// in turn (starting outside).
	fleetBlock = 10
	// fleetPeriod is both the publishing period and the step of the fix
	// times: fix times follow the wall clock, never ahead of it.
	fleetPeriod = 500 * time.Millisecond
)

// fleet publishes, every fleetPeriod, one MQTT message (QoS 1) with one fix
// of each of its vehicles: fix k of a vehicle is at the station's centre
// when (k/fleetBlock) is odd and 2.2 km north of it otherwise. The
// geofence events it calls for follow from that alone (fleet.expect):
// each vehicle enters and leaves the station once per 2*fleetBlock fixes.
type fleet struct {
	vehicles int
	ticks    atomic.Int64 // fixes published per vehicle
	stop     chan struct{}
	done     chan error
}

func (f *fleet) plate(v int) string { return fmt.Sprintf("沪F%05d", v) }

// createStation creates the fleet's station through api.
func createStation(t *testing.T, api *tmsproc.Deployment) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"name":"chaos","type":"loading","geometry":{"type":"Point","coordinates":[%v,%v]},"radius_m":300}`,
		fleetStation, fleetLng, fleetLat)
	if status, answer := call(t, api, http.MethodPost, "/api/v1/stations", body, nil); status != http.StatusCreated {
		t.Fatalf("POST station: %d %s", status, answer)
	}
}

// stationKnown waits until every geofence instance has the station in its
// catalogue (it applies station changes between batches of fixes, so the
// gauge moves once fixes flow), and asserts the premise of the expected
// events: that was before any vehicle came near it (the first block of
// fixes is outside).
func stationKnown(t *testing.T, f *fleet, geofences ...*tmsproc.Deployment) {
	t.Helper()
	for _, g := range geofences {
		tmsproc.Eventually(t, time.Minute, "the station in the geofence's catalogue", func() bool {
			v, ok := scrape(g, "tms_geofence_stations")
			return ok && v >= 1
		})
	}
	if k := f.ticks.Load(); k >= fleetBlock {
		t.Fatalf("the geofence learnt of the station only after fix %d, when vehicles had entered it: the expected events do not hold", k)
	}
}

// call sends one API request with the operator token; it returns the
// status and the body.
func call(t *testing.T, d *tmsproc.Deployment, method, path, body string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+d.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+tmsproc.OperatorToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if etag := resp.Header.Get("ETag"); etag != "" && header != nil {
		header.Set("X-Got-ETag", etag)
	}
	return resp.StatusCode, raw
}

func startFleet(t *testing.T, d *tmsproc.Deployment, vehicles int) *fleet {
	t.Helper()
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("fleet")).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxResumePubInFlight(32))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet connect: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(0) })
	f := &fleet{vehicles: vehicles, stop: make(chan struct{}), done: make(chan error, 1)}
	start := time.Now().Truncate(time.Second)
	go func() {
		pace := time.NewTicker(fleetPeriod)
		defer pace.Stop()
		stopping := false
		for k := 0; ; k++ {
			// Once asked to stop, go on to the end of an outside block
			// that follows an inside one, so that there is a visit and
			// every visit is closed and decided (the last fleetBlock fixes
			// outside span more than the reorder window).
			if !stopping {
				select {
				case <-f.stop:
					stopping = true
				default:
				}
			}
			if stopping && k%(2*fleetBlock) == fleetBlock && k > fleetBlock {
				f.done <- nil
				return
			}
			<-pace.C
			lat := fleetLat + 0.02
			if (k/fleetBlock)%2 == 1 {
				lat = fleetLat
			}
			at := start.Add(time.Duration(k) * fleetPeriod).UnixMilli()
			items := make([]string, 0, vehicles)
			for v := range vehicles {
				items = append(items, fmt.Sprintf(`{"plateNum":%q,"lng":%.6f,"lat":%.6f,"speed":30,"gps_time":%d}`,
					f.plate(v), fleetLng+float64(v%10)*0.0001, lat, at))
			}
			tok := pub.Publish(d.Topic, 1, false, `{"data":[`+strings.Join(items, ",")+`]}`)
			// Through a broker restart the publish waits for the
			// reconnection: a minute before it counts as failed.
			if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
				f.done <- fmt.Errorf("publish fix %d: %v (a timed-out token is a failure)", k, tok.Error())
				return
			}
			f.ticks.Store(int64(k + 1))
		}
	}()
	return f
}

// published is how many fixes the fleet has published so far.
func (f *fleet) published() int64 { return f.ticks.Load() * int64(f.vehicles) }

// finish stops the fleet at the end of an outside block and returns how
// many fixes it published.
func (f *fleet) finish(t *testing.T) int64 {
	t.Helper()
	close(f.stop)
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	return f.published()
}

// visits is how many visits each vehicle made: one per inside block.
func (f *fleet) visits() int64 { return f.ticks.Load() / (2 * fleetBlock) }

// topicRecords reads a topic of the deployment whole (read_committed) and
// returns its records' event ids and types, counted.
func topicRecords(t *testing.T, d *tmsproc.Deployment, topic string) (records int, ids map[string]int, types map[string]int) {
	t.Helper()
	adm, err := d.Kafka.NewAdmin("e2e-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	name := d.Kafka.Topic(topic)
	ends, err := adm.ListCommittedOffsets(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := d.Kafka.NewClient("e2e-reader", kgo.ConsumeTopics(name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ids, types = map[string]int{}, map[string]int{}
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v short of the end", name, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			records++
			ids[e.ID]++
			types[e.Type]++
		})
	}
	return records, ids, types
}

// outcome is what a scenario measured after the fleet stopped.
type outcome struct {
	published   int64
	kafkaCopies int64 // records in tms.positions beyond one per fix
}

// checkOutcome makes the checks every scenario shares, once the fleet has
// stopped after publishing n fixes: every fix in tms.positions (the
// copies beyond one are counted, not failed: a redelivered MQTT message
// is produced again, and the history's ids make it one row), the history
// exactly once, the geofence events those of the geometry each once, no
// consumer group behind, nothing dead-lettered.
func checkOutcome(t *testing.T, d *tmsproc.Deployment, f *fleet, n int64) outcome {
	t.Helper()
	exactlyOnce(t, d, n)
	records, ids, _ := topicRecords(t, d, event.TopicPositions)
	if int64(len(ids)) != n {
		t.Errorf("tms.positions holds %d distinct fixes of %d published", len(ids), n)
	}
	visits := f.visits()
	wantEvents := 2 * visits * int64(f.vehicles)
	closed := func() int64 {
		return d.Count(`SELECT count(*) FROM visits WHERE station_id = $1 AND exited_at IS NOT NULL`, fleetStation)
	}
	for deadline := time.Now().Add(2 * time.Minute); closed() < visits*int64(f.vehicles); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, _, types := topicRecords(t, d, event.TopicGeofence)
			t.Fatalf("after 2m: %d closed visits in the read model, want %d; tms.geofence holds %v", closed(), visits*int64(f.vehicles), types)
		}
	}
	geoRecords, geoIDs, geoTypes := topicRecords(t, d, event.TopicGeofence)
	entered, exited := int64(geoTypes[event.TypeEnteredStation]), int64(geoTypes[event.TypeExitedStation])
	if entered+exited != wantEvents || entered != exited || geoRecords != len(geoIDs) {
		t.Errorf("tms.geofence: %d entries and %d exits in %d records with %d distinct ids; the fleet calls for %d of each, each once",
			entered, exited, geoRecords, len(geoIDs), visits*int64(f.vehicles))
	}
	if got := d.Count(`SELECT count(*) FROM visits WHERE station_id = $1`, fleetStation); got != visits*int64(f.vehicles) {
		t.Errorf("visits read model: %d visits, want %d (%d vehicles, %d each)", got, visits*int64(f.vehicles), f.vehicles, visits)
	}
	groupsCaughtUp(t, d)
	if l := deadLetterCount(t, d); l != 0 {
		t.Errorf("%d dead letters; want none", l)
	}
	return outcome{published: n, kafkaCopies: int64(records) - int64(len(ids))}
}

// groupsCaughtUp waits until the geofence's and the jobs' consumer groups
// have committed everything their topics hold, and every projector has
// stored as far as the end: no group is stuck.
func groupsCaughtUp(t *testing.T, d *tmsproc.Deployment) {
	t.Helper()
	adm, err := d.Kafka.NewAdmin("e2e-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	groups := []string{d.Kafka.Group("tms.geofence"), d.Kafka.Group("tms.jobs")}
	var last string
	caughtUp := func() bool {
		lags, err := adm.Lag(t.Context(), groups...)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, g := range groups {
			l := lags[g]
			if l.Error() != nil || l.Lag.Total() != 0 {
				last = fmt.Sprintf("%s: state %s, lag %d, err %v", g, l.State, l.Lag.Total(), l.Error())
				return false
			}
		}
		if behind := d.ProjectorsBehind(); behind != "" {
			last = behind
			return false
		}
		return true
	}
	for deadline := time.Now().Add(2 * time.Minute); !caughtUp(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 2m a consumer group is behind: %s", last)
		}
	}
}

// instances is the several-instances setup of issue 11 part 2: three
// processes, each role on at least two (the geofence on all three).
type instances struct {
	a, b, c *tmsproc.Deployment
}

func (s instances) all() []*tmsproc.Deployment { return []*tmsproc.Deployment{s.a, s.b, s.c} }

func startInstances(t *testing.T) (*tmsproc.Deployment, instances) {
	t.Helper()
	common := []string{
		// The test asks /readyz and /metrics often: no per-address limit.
		"TMS_HTTP_ADDRESS_RATE=1000", "TMS_HTTP_ADDRESS_BURST=1000",
		// Two ingest instances share the feed.
		"TMS_MQTT_SHARE_GROUP=" + testenv.Name("ingest"),
		// Three processes and three Kafka nodes on two cores: one
		// member per projector and process.
		"TMS_PROJECTOR_MEMBERS=1",
	}
	d := newDeployment(t, common...)
	s := instances{
		a: d.Instance("a", "TMS_ROLES=ingest,geofence,jobs,api"),
		b: d.Instance("b", "TMS_ROLES=ingest,geofence,project,api"),
		c: d.Instance("c", "TMS_ROLES=geofence,jobs,project"),
	}
	for _, i := range s.all() {
		i.Start()
	}
	return d, s
}

// wsCounter is a WebSocket client of one API instance, subscribed to the
// station entries and exits, counting them by event id.
type wsCounter struct {
	mu     sync.Mutex
	frames int
	ids    map[string]int
	done   chan struct{}
}

func countEvents(t *testing.T, api *tmsproc.Deployment) *wsCounter {
	t.Helper()
	ctx := t.Context()
	conn, _, err := websocket.Dial(ctx, "ws://"+api.HTTPAddr+"/api/v1/ws?access_token="+tmsproc.ViewerToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No snapshot comes for a filter without positions: only "subscribed".
	msg := fmt.Sprintf(`{"subscribe":{"types":[%q,%q]}}`, event.TypeEnteredStation, event.TypeExitedStation)
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	ws := &wsClient{conn: conn, ctx: ctx}
	if f := ws.next(t); f.Type != "subscribed" {
		t.Fatalf("frame %+v, want subscribed", f)
	}
	c := &wsCounter{ids: map[string]int{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, raw, err := ws.conn.Read(ws.ctx)
			if err != nil {
				return
			}
			var f wsFrame
			if json.Unmarshal(raw, &f) != nil || f.Type != "event" {
				continue
			}
			e, err := event.Decode(f.Event)
			if err != nil {
				continue
			}
			c.mu.Lock()
			c.frames++
			c.ids[e.ID]++
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ws.conn.CloseNow(); <-c.done })
	return c
}

func (c *wsCounter) counts() (frames, distinct int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, len(c.ids)
}

// TestClusterInstances: three instances with split roles on the cluster
// (a: ingest, geofence, jobs, api; b: ingest, geofence, project, api; c:
// geofence, jobs, project), the two ingest instances on one shared MQTT
// subscription. Both API instances answer alike; a WebSocket client of
// each gets every station entry and exit once; two station updates sent
// at once to the two API instances with the same If-Match serialize (one
// wins, the other is answered 412) and both instances then show the
// winner's version; every fix is stored once though two instances ingest.
func TestClusterInstances(t *testing.T) {
	needCluster(t)
	d, s := startInstances(t)
	createStation(t, s.a)
	clients := []*wsCounter{countEvents(t, s.a), countEvents(t, s.b)}
	f := startFleet(t, d, 100) // 200 positions/s
	stationKnown(t, f, s.all()...)

	// Two updates of the station at once, one to each API instance,
	// both made against version 1.
	tmsproc.Eventually(t, time.Minute, "positions flowing", func() bool { return d.Count(`SELECT count(*) FROM positions`) >= 400 })
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, api := range []*tmsproc.Deployment{s.a, s.b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"name":"chaos %d","type":"loading","geometry":{"type":"Point","coordinates":[%v,%v]},"radius_m":300}`,
				i, fleetLng, fleetLat)
			statuses[i], _ = call(t, api, http.MethodPut, "/api/v1/stations/"+fleetStation, body, http.Header{"If-Match": {`"1"`}})
		}()
	}
	wg.Wait()
	won := -1
	for i, st := range statuses {
		switch st {
		case http.StatusOK:
			if won >= 0 {
				t.Errorf("both updates made against version 1 succeeded: %v", statuses)
			}
			won = i
		case http.StatusPreconditionFailed:
		default:
			t.Errorf("update %d: %d, want 200 or 412", i, st)
		}
	}
	if won < 0 {
		t.Fatalf("no update won: %v", statuses)
	}
	for _, api := range []*tmsproc.Deployment{s.a, s.b} {
		h := http.Header{}
		status, body := call(t, api, http.MethodGet, "/api/v1/stations/"+fleetStation, "", h)
		var st struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(body, &st)
		if status != http.StatusOK || h.Get("X-Got-ETag") != `"2"` || st.Name != fmt.Sprintf("chaos %d", won) {
			t.Errorf("GET on %s: %d, ETag %s, name %q; want 200, \"2\", the winner's (chaos %d)",
				api.HTTPAddr, status, h.Get("X-Got-ETag"), st.Name, won)
		}
	}

	n := f.finish(t)
	o := checkOutcome(t, d, f, n)
	if o.kafkaCopies != 0 {
		t.Errorf("%d fixes in tms.positions more than once: two ingest instances on a shared subscription must each get other messages", o.kafkaCopies)
	}
	for _, i := range []*tmsproc.Deployment{s.a, s.b} {
		if v, ok := scrape(i, "tms_ingest_messages_total"); !ok || v == 0 {
			t.Errorf("ingest instance %s received no message: the subscription is not shared between the two", i.HTTPAddr)
		}
	}
	// Every API instance answers alike.
	// The visits' window is given: without one it ends at each request's
	// own now, which the answers repeat.
	window := "&from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	paths := []string{"/api/v1/vehicles?limit=1000", "/api/v1/visits?station=" + fleetStation + "&limit=1000" + window, "/api/v1/stations/" + fleetStation}
	for _, p := range paths {
		var first []byte
		for _, api := range []*tmsproc.Deployment{s.a, s.b} {
			status, body := call(t, api, http.MethodGet, p, "", nil)
			if status != http.StatusOK {
				t.Errorf("GET %s on %s: %d %s", p, api.HTTPAddr, status, body)
			}
			if first == nil {
				first = body
			} else if !bytes.Equal(first, body) {
				t.Errorf("GET %s: the two API instances answer differently:\n%s\n%s", p, first, body)
			}
		}
	}
	if f.visits() == 0 {
		t.Fatal("the fleet made no visit: the WebSocket and visits checks would hold vacuously")
	}
	want := int(2 * f.visits() * int64(f.vehicles))
	for i, c := range clients {
		tmsproc.Eventually(t, time.Minute, "every entry and exit on each WebSocket client", func() bool {
			_, distinct := c.counts()
			return distinct >= want
		})
		if frames, distinct := c.counts(); frames != want || distinct != want {
			t.Errorf("WebSocket client %d: %d frames, %d distinct events; want %d, each once", i, frames, distinct, want)
		}
	}
	t.Logf("measured: %d positions at 200/s, %d visits; station updates %v", n, f.visits()*int64(f.vehicles), statuses)
	for _, i := range s.all() {
		i.Stop()
	}
}

// watchExits fails the test as soon as an instance exits by itself
// (ignore: the one being killed on purpose).
func watchExits(t *testing.T, ds []*tmsproc.Deployment, ignore *atomic.Pointer[tmsproc.Deployment]) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, d := range ds {
				if d != ignore.Load() && d.Exited() {
					t.Errorf("instance %s exited by itself", d.HTTPAddr)
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// TestClusterInstanceKilled: on the several-instances setup under a
// steady load, each instance in turn (together they run every role) is
// SIGKILLed and started again once 400 more positions are stored. The
// others never exit; afterwards the shared checks hold.
func TestClusterInstanceKilled(t *testing.T) {
	needCluster(t)
	d, s := startInstances(t)
	createStation(t, s.a)
	var killed atomic.Pointer[tmsproc.Deployment]
	stopWatch := watchExits(t, s.all(), &killed)
	f := startFleet(t, d, 100)
	stationKnown(t, f, s.all()...)
	tmsproc.Eventually(t, time.Minute, "positions flowing", func() bool { return d.Count(`SELECT count(*) FROM positions`) >= 400 })
	for _, victim := range s.all() {
		killed.Store(victim)
		at := d.Count(`SELECT count(*) FROM positions`)
		victim.Kill()
		killedAt := time.Now()
		tmsproc.Eventually(t, 2*time.Minute, "positions stored while an instance is down", func() bool {
			return d.Count(`SELECT count(*) FROM positions`) >= at+400
		})
		flowing := time.Since(killedAt)
		victim.Start() // returns once its /readyz is 200
		killed.Store(nil)
		t.Logf("measured: instance %s killed; 400 positions stored %s later; restarted and ready %s after the kill",
			victim.HTTPAddr, flowing.Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))
	}
	n := f.finish(t)
	finished := time.Now()
	o := checkOutcome(t, d, f, n)
	stopWatch()
	t.Logf("measured: %d positions at 200/s; %d copies in tms.positions (redelivered MQTT messages); checks held %s after the last publish",
		n, o.kafkaCopies, time.Since(finished).Round(time.Millisecond))
	for _, i := range s.all() {
		i.Stop()
	}
}

// serviceRestart runs one restart scenario on a single `tms serve`:
// under a steady load, restart (services.sh what), then wait until
// positions are stored again and /readyz is 200; tms never exits.
func serviceRestart(t *testing.T, what string) {
	c := needCluster(t)
	d := newDeployment(t, "TMS_HTTP_ADDRESS_RATE=1000", "TMS_HTTP_ADDRESS_BURST=1000", "TMS_PROJECTOR_MEMBERS=1")
	d.Start()
	createStation(t, d)
	stopWatch := watchExit(t, d)
	f := startFleet(t, d, 100)
	stationKnown(t, f, d)
	tmsproc.Eventually(t, time.Minute, "positions flowing", func() bool { return d.Count(`SELECT count(*) FROM positions`) >= 400 })
	restartAt := time.Now()
	c.service(what)
	restarted := time.Since(restartAt)
	// Count through a pool that has lost its connections: d.Count's
	// connection may be one of them, so the first query may fail.
	var at int64
	tmsproc.Eventually(t, time.Minute, "the test's own pool reconnected", func() bool {
		return d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM positions`).Scan(&at) == nil
	})
	tmsproc.Eventually(t, 2*time.Minute, "positions stored after the restart", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) >= at+400
	})
	flowing := time.Since(restartAt)
	tmsproc.Eventually(t, 2*time.Minute, "/readyz 200 after the restart", func() bool { return readyz(d) == http.StatusOK })
	ready := time.Since(restartAt)
	n := f.finish(t)
	finished := time.Now()
	o := checkOutcome(t, d, f, n)
	stopWatch()
	t.Logf("measured: %d positions at 200/s; %s took %s; 400 positions stored %s and /readyz 200 %s after it began; %d copies in tms.positions; checks held %s after the last publish",
		n, what, restarted.Round(time.Millisecond), flowing.Round(time.Millisecond), ready.Round(time.Millisecond), o.kafkaCopies,
		time.Since(finished).Round(time.Millisecond))
	if what == "pg-restart" && o.kafkaCopies != 0 {
		t.Errorf("%d copies in tms.positions: a Postgres restart must not touch ingest", o.kafkaCopies)
	}
	d.Stop()
}

// TestClusterPostgresRestart: Postgres restarted with pg_ctl restart -m
// immediate (every connection cut, crash recovery) under load.
func TestClusterPostgresRestart(t *testing.T) { serviceRestart(t, "pg-restart") }

// TestClusterMosquittoRestart: Mosquitto (persistence on) restarted under
// load: ingest's persistent session and the publisher's queued messages
// survive it.
func TestClusterMosquittoRestart(t *testing.T) { serviceRestart(t, "mosquitto-restart") }
