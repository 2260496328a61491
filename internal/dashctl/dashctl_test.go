package dashctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/adapters/g7"
	"github.com/tmsfleet/tms/internal/testenv"
)

// quiet keeps paho's and the server's lines out of the test output: they
// may come after a test has ended.
var quiet = slog.New(slog.DiscardHandler)

// fakeService records the stops and starts it is asked for. Each blocks
// until release is closed, when release is set.
type fakeService struct {
	mu      sync.Mutex
	calls   []string
	entered chan string
	release chan struct{}
	err     error
}

func (f *fakeService) do(what string) error {
	f.mu.Lock()
	entered, release := f.entered, f.release
	f.mu.Unlock()
	if entered != nil {
		entered <- what
	}
	if release != nil {
		<-release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, what)
	return f.err
}

// set changes the service's behaviour between requests.
func (f *fakeService) set(entered chan string, release chan struct{}, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entered, f.release, f.err = entered, release, err
}

func (f *fakeService) TryStop(context.Context) error  { return f.do("stopped") }
func (f *fakeService) TryStart(context.Context) error { return f.do("started") }

func (f *fakeService) done() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, ",")
}

// newServer starts a control server on a loopback listener, publishing to
// topic on the broker at url ("": a broker of its own); now, when set,
// stands in for the clock.
func newServer(t *testing.T, url, topic string, svcFake Service, now time.Time) (*Server, string) {
	t.Helper()
	if url == "" {
		url = testenv.FromEnv(os.LookupEnv).MQTT(t)
	}
	s, err := New(t.Context(), Config{BrokerURL: url, Topic: topic, ClientID: testenv.Name("dashctl"),
		Service: svcFake, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !now.IsZero() {
		s.now = func() time.Time { return now }
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

// TestDrivePublishesWhatASubscriberSees: a drive of three points 100 m
// apart eastwards, 10 s apart, arrives at a subscriber of the topic as one
// G7 message that tms's parser accepts whole: the plate, the points,
// fix times ending at the request's now, 36 km/h and course 90 on each.
// The answer comes after the broker's acknowledgement, so the message is
// there once it has come.
func TestDrivePublishesWhatASubscriberSees(t *testing.T) {
	t.Parallel()
	url := testenv.FromEnv(os.LookupEnv).MQTT(t)
	topic := testenv.Name("g7") + "/positions"
	got := make(chan []byte, 16)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(testenv.Name("sub")).SetCleanSession(true))
	wait := func(what string, tok paho.Token) {
		t.Helper()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("%s: timed out", what)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait("connect", sub.Connect())
	t.Cleanup(func() { sub.Disconnect(250) })
	wait("subscribe", sub.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }))

	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	_, ctl := newServer(t, url, topic, &fakeService{}, now)
	// 100 m east of (121.5, 31.2) is 100 / (111,195 * cos 31.2°) degrees
	// of longitude.
	step := 100 / (2 * math.Pi * earthRadiusM / 360 * math.Cos(31.2*math.Pi/180))
	body := fmt.Sprintf(`{"plate": "沪Z00001", "points": [[121.5, 31.2], [%.7f, 31.2], [%.7f, 31.2]], "interval_s": 10}`,
		121.5+step, 121.5+2*step)
	if code, msg := post(t, ctl+"/drive", body); code != http.StatusNoContent {
		t.Fatalf("drive: %d %s", code, msg)
	}
	var payload []byte
	select {
	case payload = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the topic within 10 s of the broker's acknowledgement")
	}
	batch := g7.Parse(payload, now)
	if batch.Rejection != nil || len(batch.Items) != 3 {
		t.Fatalf("message %s: %+v", payload, batch)
	}
	for i, it := range batch.Items {
		p := it.Position
		wantTime := now.Add(time.Duration(i-2) * 10 * time.Second)
		switch {
		case it.Rejection != nil:
			t.Errorf("item %d rejected: %v", i, it.Rejection)
		case p.Plate != "沪Z00001" || !p.FixTime.Equal(wantTime):
			t.Errorf("item %d: %s at %s, want 沪Z00001 at %s", i, p.Plate, p.FixTime, wantTime)
		case math.Abs(p.Lng-(121.5+float64(i)*step)) > 1e-6 || p.Lat != 31.2:
			t.Errorf("item %d at (%v, %v)", i, p.Lng, p.Lat)
		case math.Abs(p.SpeedKmh-36) > 0.1 || p.Course == nil || *p.Course != 90:
			t.Errorf("item %d: %v km/h, course %v; want 36 km/h, 90", i, p.SpeedKmh, p.Course)
		}
	}
	select {
	case extra := <-got:
		t.Errorf("a second message: %s", extra)
	default:
	}
}

// TestDriveRefusesABadBody: each body the server cannot use is answered
// 400 (413 when too large) with the reason, and nothing is published.
func TestDriveRefusesABadBody(t *testing.T) {
	t.Parallel()
	points := func(n int) string {
		p := make([]string, n)
		for i := range p {
			p[i] = fmt.Sprintf("[121.5, %.5f]", 31.2+float64(i)*1e-5)
		}
		return "[" + strings.Join(p, ",") + "]"
	}
	for _, c := range []struct {
		name, body, reason string
		code               int
	}{
		{"not JSON", `{"plate": `, "body", 400},
		{"an unknown field", `{"plate": "沪Z00001", "points": [[121.5, 31.2]], "speed": 3}`, "unknown field", 400},
		{"two objects", `{"plate": "沪Z00001", "points": [[121.5, 31.2]]} {}`, "data after", 400},
		{"no plate", `{"points": [[121.5, 31.2]]}`, "plate", 400},
		{"a plate tms refuses", `{"plate": "沪Z 00001", "points": [[121.5, 31.2]]}`, "invalid_plate", 400},
		{"no points", `{"plate": "沪Z00001", "points": []}`, "points", 400},
		{"too many points", `{"plate": "沪Z00001", "points": ` + points(DefaultMaxPoints+1) + `}`, "at most 1000", 400},
		{"a point of three numbers", `{"plate": "沪Z00001", "points": [[121.5, 31.2, 4]]}`, "points[0]", 400},
		{"a latitude out of range", `{"plate": "沪Z00001", "points": [[121.5, 31.2], [121.5, 95]]}`, "points[1]", 400},
		{"too fast", `{"plate": "沪Z00001", "points": [[121.5, 31.2], [121.6, 31.2]], "interval_s": 1}`, "speed_out_of_range", 400},
		{"a zero interval", `{"plate": "沪Z00001", "points": [[121.5, 31.2]], "interval_s": 0}`, "interval_s", 400},
		{"an interval over an hour", `{"plate": "沪Z00001", "points": [[121.5, 31.2]], "interval_s": 3601}`, "interval_s", 400},
		{"a body over 1 MiB", `{"plate": "沪Z00001", "points": [[121.5, 31.2]], "x": "` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, "over", 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := testenv.Name("g7") + "/positions"
			_, ctl := newServer(t, "", topic, &fakeService{}, time.Time{})
			code, msg := post(t, ctl+"/drive", c.body)
			if code != c.code || !strings.Contains(msg, c.reason) {
				t.Errorf("%d %q, want %d with %q", code, msg, c.code, c.reason)
			}
		})
	}
	t.Run("a GET", func(t *testing.T) {
		t.Parallel()
		_, ctl := newServer(t, "", testenv.Name("g7")+"/positions", &fakeService{}, time.Time{})
		resp, err := http.Get(ctl + "/drive")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /drive: %d", resp.StatusCode)
		}
	})
}

// TestStopAndStartAnswerAfterTheFact: /stop answers once the service has
// stopped and /start once it has started again, not before; a second stop
// or a start of the running service is 409, and the service's failure is
// the answer's.
func TestStopAndStartAnswerAfterTheFact(t *testing.T) {
	t.Parallel()
	svc := &fakeService{}
	_, ctl := newServer(t, "", testenv.Name("g7")+"/positions", svc, time.Time{})

	entered := make(chan string, 1)
	for _, what := range []string{"stop", "start"} {
		release := make(chan struct{})
		svc.set(entered, release, nil)
		answer := make(chan int, 1)
		go func() {
			resp, err := http.Post(ctl+"/"+what, "", nil)
			if err != nil {
				t.Error(err)
				answer <- 0
				return
			}
			resp.Body.Close()
			answer <- resp.StatusCode
		}()
		<-entered
		select {
		case code := <-answer:
			t.Fatalf("/%s answered %d while the service was still at it", what, code)
		default:
		}
		close(release)
		if code := <-answer; code != http.StatusNoContent {
			t.Fatalf("/%s: %d", what, code)
		}
		if want := map[string]string{"stop": "stopped", "start": "stopped,started"}[what]; svc.done() != want {
			t.Errorf("after /%s answered: %q, want %q", what, svc.done(), want)
		}
	}

	svc.set(nil, nil, nil)
	if code, msg := post(t, ctl+"/start", ""); code != http.StatusConflict {
		t.Errorf("start while running: %d %s", code, msg)
	}
	if code, msg := post(t, ctl+"/stop", ""); code != http.StatusNoContent {
		t.Errorf("stop: %d %s", code, msg)
	}
	if code, msg := post(t, ctl+"/stop", ""); code != http.StatusConflict {
		t.Errorf("stop while stopped: %d %s", code, msg)
	}
	svc.set(nil, nil, errors.New("port taken"))
	if code, msg := post(t, ctl+"/start", ""); code != http.StatusInternalServerError || !strings.Contains(msg, "port taken") {
		t.Errorf("a start that fails: %d %s", code, msg)
	}
}
