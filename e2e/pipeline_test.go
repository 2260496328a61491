package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

type apiVehicle struct {
	Plate    string `json:"plate"`
	Position struct {
		Lat      float64   `json:"lat"`
		Lng      float64   `json:"lng"`
		SpeedKmh float64   `json:"speed_kmh"`
		FixTime  time.Time `json:"fix_time"`
	} `json:"position"`
	PositionsCount int64 `json:"positions_count"`
}

// TestG7BatchFromMosquittoPubReachesTheAPIWebSocketAndDeadLetters publishes
// one G7 batch of good and bad items with mosquitto_pub, a client tms did
// not write, and follows it through every output.
func TestG7BatchFromMosquittoPubReachesTheAPIWebSocketAndDeadLetters(t *testing.T) {
	t.Parallel()
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal("mosquitto_pub is not installed (apt-get install mosquitto-clients; make test does it)")
	}
	d := newDeployment(t)
	d.Start()

	ws := subscribe(d, t, `{"subscribe":{"vehicles":["沪A12345","苏B7K9Q2"]}}`)

	fix := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ms := func(off time.Duration) string { return fmt.Sprint(fix.Add(off).UnixMilli()) }
	batch := `{"data":[
		{"plateNum":"沪A12345","lng":121.4737,"lat":31.2304,"speed":42.5,"course":87,"gps_time":` + ms(0) + `},
		{"plateNum":"沪A12345","lng":121.4740,"lat":95,"speed":40,"gps_time":` + ms(time.Second) + `},
		{"lng":121.4,"lat":31.2,"speed":3,"gps_time":` + ms(0) + `},
		{"plateNum":"苏B7K9Q2","lng":"120.5853","lat":"31.2989","speed":"0","gps_time":"` + ms(0) + `"},
		{"plateNum":"沪A12345","lng":121.4750,"lat":31.2310,"speed":"-5","gps_time":` + ms(2*time.Second) + `},
		{"plateNum":"沪A12345","lng":121.4760,"lat":31.2320,"speed":50,"gps_time":` + ms(3*time.Second) + `}
	]}`
	host, port := mqttHostPort(t, d.MQTTURL)
	if out, err := exec.Command(pub, "-h", host, "-p", port, "-q", "1", "-t", d.Topic, "-m", batch).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}

	// The API: the newest good fix of each vehicle, and its track.
	var a apiVehicle
	tmsproc.Eventually(t, 30*time.Second, "沪A12345 in the API with its two good fixes", func() bool {
		return d.Get("/api/v1/vehicles/"+url.PathEscape("沪A12345"), &a) == 200 && a.PositionsCount == 2
	})
	if a.Position.Lat != 31.2320 || !a.Position.FixTime.Equal(fix.Add(3*time.Second)) || a.Position.SpeedKmh != 50 {
		t.Errorf("沪A12345 = %+v, want its fix at +3s", a)
	}
	var b apiVehicle
	tmsproc.Eventually(t, 30*time.Second, "苏B7K9Q2 in the API", func() bool {
		return d.Get("/api/v1/vehicles/"+url.PathEscape("苏B7K9Q2"), &b) == 200
	})
	if b.Position.Lat != 31.2989 || b.Position.SpeedKmh != 0 || b.PositionsCount != 1 {
		t.Errorf("parked 苏B7K9Q2 (numbers as strings) = %+v", b)
	}
	var track struct {
		Points []struct {
			Lat     float64   `json:"lat"`
			FixTime time.Time `json:"fix_time"`
		} `json:"points"`
	}
	q := url.Values{"from": {fix.Add(-time.Hour).Format(time.RFC3339)}, "to": {fix.Add(time.Hour).Format(time.RFC3339)}}
	if code := d.Get("/api/v1/vehicles/"+url.PathEscape("沪A12345")+"/track?"+q.Encode(), &track); code != 200 {
		t.Fatalf("track: %d", code)
	}
	if len(track.Points) != 2 || track.Points[0].Lat != 31.2304 || track.Points[1].Lat != 31.2320 {
		t.Errorf("track = %+v, want the two good fixes in order", track.Points)
	}

	// The WebSocket: every good fix of the subscribed vehicles, live.
	got := ws.positions(t, 3)
	sort.Strings(got)
	want := []string{"沪A12345@31.2304", "沪A12345@31.232", "苏B7K9Q2@31.2989"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("WebSocket pushed %v, want %v", got, want)
	}

	// The dead letters: each bad item once, with its reason and raw bytes.
	letters := deadLetters(d, t, 3)
	reasons := map[string]string{}
	for _, l := range letters {
		reasons[l.Reason] = l.Field
		if !strings.Contains(batch, l.Raw) || l.Origin != "mqtt:"+d.Topic {
			t.Errorf("letter %+v: raw bytes or origin wrong", l)
		}
	}
	if reasons["latitude_out_of_range"] != "lat" || reasons["missing_plate"] != "plateNum" || reasons["speed_out_of_range"] != "speed" {
		t.Errorf("dead-letter reasons = %v", reasons)
	}

	d.Stop()
}

type wsClient struct {
	conn *websocket.Conn
	ctx  context.Context
}

// subscribe opens a WebSocket as a browser would (token in the query) and
// waits for the subscription's confirmation and snapshot.
func subscribe(d *tmsproc.Deployment, t *testing.T, msg string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws://"+d.HTTPAddr+"/api/v1/ws?access_token="+tmsproc.ViewerToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	c := &wsClient{conn: conn, ctx: ctx}
	for _, want := range []string{"subscribed", "snapshot"} {
		if f := c.next(t); f.Type != want {
			t.Fatalf("frame %+v, want %s", f, want)
		}
	}
	return c
}

type wsFrame struct {
	Type  string          `json:"type"`
	Seq   uint64          `json:"seq"`
	Event json.RawMessage `json:"event"`
}

func (c *wsClient) next(t *testing.T) wsFrame {
	t.Helper()
	_, raw, err := c.conn.Read(c.ctx)
	if err != nil {
		t.Fatalf("WebSocket read: %v", err)
	}
	var f wsFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("frame %s: %v", raw, err)
	}
	return f
}

// positions reads n position events and returns them as plate@lat.
func (c *wsClient) positions(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		f := c.next(t)
		if f.Type != "event" {
			continue
		}
		e, err := event.Decode(f.Event)
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			Lat float64 `json:"lat"`
		}
		_ = json.Unmarshal(e.Data, &data)
		out = append(out, fmt.Sprintf("%s@%v", e.Subject, data.Lat))
	}
	return out
}

// deadLetters reads n letters from the deployment's dead-letter topic.
func deadLetters(d *tmsproc.Deployment, t *testing.T, n int) []deadletter.Letter {
	t.Helper()
	cl, err := d.Kafka.NewClient("e2e-deadletters",
		kgo.ConsumeTopics(d.Kafka.Topic(event.TopicDeadLetter)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []deadletter.Letter
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d dead letters", len(out), n)
		}
		for _, r := range fs.Records() {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			var l deadletter.Letter
			if err := json.Unmarshal(e.Data, &l); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
		}
	}
	return out
}
