package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// g7Listener collects the G7 reports a WebSocket subscriber receives.
type g7Listener struct {
	mu      sync.Mutex
	reports []g7event.Reported
	done    chan struct{}
}

func listenG7(t *testing.T, d *tmsproc.Deployment) *g7Listener {
	t.Helper()
	ctx := t.Context()
	conn, _, err := websocket.Dial(ctx, "ws://"+d.HTTPAddr+"/api/v1/ws?access_token="+tmsproc.ViewerToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"subscribe":{"types":[%q]}}`, event.TypeG7EventReported)); err != nil {
		t.Fatal(err)
	}
	ws := &wsClient{conn: conn, ctx: ctx}
	// No snapshot comes for a filter without positions: only "subscribed".
	if f := ws.next(t); f.Type != "subscribed" {
		t.Fatalf("frame %+v, want subscribed", f)
	}
	l := &g7Listener{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			_, raw, err := conn.Read(ctx)
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
			d, err := g7event.FromEvent(e)
			if err != nil {
				continue // another type: the filter would be broken, which the counts below show
			}
			l.mu.Lock()
			l.reports = append(l.reports, d)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.CloseNow(); <-l.done })
	return l
}

func (l *g7Listener) received() []g7event.Reported {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]g7event.Reported(nil), l.reports...)
}

// g7EventList is GET /vehicles/{plate}/g7-events's answer, as much of it
// as the test reads.
type g7EventList struct {
	Events []struct {
		ID        string
		Kind      string
		Open      bool
		StartTime time.Time  `json:"start_time"`
		EndTime   *time.Time `json:"end_time"`
	}
}

// TestG7EventFeedsEndToEnd runs `tms serve` with G7's three event feeds
// set and publishes their messages over MQTT: a stop reported open,
// repeated, closed and repeated closed, an idle event, an EMS alarm
// still open, and a message with its end before its start. The API shows
// one row per event (the stop closed), the WebSocket subscriber of the
// type gets every report, and the bad message is one dead letter naming
// its reason. Then a vehicle drives a known route with three stops while
// G7 reports two of them and one tms cannot have seen; the comparison
// pairs and separates them so.
func TestG7EventFeedsEndToEnd(t *testing.T) {
	t.Parallel()
	prefix := testenv.Name("g7ev")
	stopTopic, idleTopic, emsTopic := prefix+"/stop", prefix+"/idle", prefix+"/ems"
	d := newDeployment(t, "G7_MQTT_STOP_TOPIC="+stopTopic, "G7_MQTT_IDLE_TOPIC="+idleTopic, "G7_MQTT_EMS_TOPIC="+emsTopic)
	d.Start()
	ws := listenG7(t, d)

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("g7pub")))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(0) })
	publish := func(topic, msg string) {
		t.Helper()
		if tok := pub.Publish(topic, 1, false, msg); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v (a timed-out token is a failure)", tok.Error())
		}
	}

	base := time.Now().Add(-4 * time.Hour).Truncate(time.Second)
	ms := func(m float64) int64 { return base.Add(time.Duration(m * float64(time.Minute))).UnixMilli() }
	g7msg := func(plate string, push, start float64, end *float64, lat, lng float64) string {
		endTime := "null"
		if end != nil {
			endTime = fmt.Sprint(ms(*end))
		}
		// G7's lower-case end coordinates, and numbers as strings.
		return fmt.Sprintf(`{"pushTime":%d,"data":{"plateNum":%q,"startTime":"%d","endTime":%s,"seconds":null,
			"startLng":"%.7f","startLat":%.7f,"endlng":%.7f,"endlat":%.7f}}`, ms(push), plate, ms(start), endTime, lng, lat, lng, lat)
	}
	fl := func(v float64) *float64 { return &v }

	// Part 1: repeats, an open event later closed, a bad message.
	const plate = "沪G70001"
	openStop := g7msg(plate, 1, 0, nil, 31.3, 121.5)
	closedStop := g7msg(plate, 21, 0, fl(20), 31.3, 121.5)
	publish(stopTopic, openStop)
	publish(stopTopic, openStop)
	publish(stopTopic, closedStop)
	publish(stopTopic, closedStop)
	publish(idleTopic, g7msg(plate, 41, 30, fl(40), 31.3, 121.5))
	publish(emsTopic, g7msg(plate, 50, 50, nil, 31.3, 121.5))
	publish(stopTopic, g7msg(plate, 61, 60, fl(55), 31.3, 121.5)) // ends before it starts

	path := "/api/v1/vehicles/" + url.PathEscape(plate) + "/g7-events?from=" + url.QueryEscape(base.Add(-time.Hour).Format(time.RFC3339)) +
		"&to=" + url.QueryEscape(base.Add(2*time.Hour).Format(time.RFC3339))
	var list g7EventList
	tmsproc.Eventually(t, time.Minute, "three events, the stop closed, in the API", func() bool {
		list = g7EventList{}
		return d.Get(path, &list) == http.StatusOK && len(list.Events) == 3 && !list.Events[0].Open
	})
	if e := list.Events[0]; e.Kind != "stop" || !e.StartTime.Equal(base) || !e.EndTime.Equal(base.Add(20*time.Minute)) {
		t.Errorf("the stop: %+v", e)
	}
	if e := list.Events[1]; e.Kind != "idle" || e.Open {
		t.Errorf("the idle event: %+v", e)
	}
	if e := list.Events[2]; e.Kind != "ems" || !e.Open || e.EndTime != nil {
		t.Errorf("the EMS alarm: %+v", e)
	}
	if n := d.Count(`SELECT count(*) FROM g7_events WHERE vehicle = $1`, plate); n != 3 {
		t.Errorf("%d rows, want one per event", n)
	}
	var stops g7EventList
	if d.Get(path+"&kind=stop", &stops) != http.StatusOK || len(stops.Events) != 1 {
		t.Errorf("kind=stop: %+v", stops)
	}

	// The WebSocket subscriber gets every report (six), of three events.
	tmsproc.Eventually(t, 30*time.Second, "six reports on the WebSocket", func() bool { return len(ws.received()) >= 6 })
	events, closedStops := map[string]bool{}, 0
	for _, r := range ws.received() {
		events[r.G7EventID] = true
		if r.Kind == g7event.KindStop && !r.Open {
			closedStops++
		}
	}
	if got := ws.received(); len(got) != 6 || len(events) != 3 || closedStops != 2 {
		t.Errorf("WebSocket: %d reports of %d events, %d closed stops; want 6 of 3, 2", len(got), len(events), closedStops)
	}

	// The bad message: one dead letter with its reason.
	letters := readAll(t, d, 1)
	e, err := event.Decode(letters[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var l deadletter.Letter
	if err := json.Unmarshal(e.Data, &l); err != nil {
		t.Fatal(err)
	}
	if l.Reason != g7event.ReasonEndBeforeStart || l.Field != "endTime" || l.Origin != "mqtt:"+stopTopic || l.Vehicle != plate {
		t.Errorf("dead letter %+v", l)
	}

	// Part 2: the comparison against a vehicle whose stops are known.
	compareStops(t, d, publish, stopTopic, base)
}

// compareStops drives 沪G70002 east from A, a fix every 10 s: parked at A
// (0 to 10 min), 5 km to B (10 to 20), parked at B (20 to 40), 5 km to C
// (40 to 50), parked at C (50 to 70), then on to D, where it stays from
// 80 min. tms derives its stops at A, B, C and D (the last still open).
// G7 reports B (half a minute later at each end, 30 m away), C (as tms),
// and a one-minute stop on the road to B that tms, whose stops last at
// least TMS_TRIPS_PARKING, cannot have: two pairs, one stop G7 saw alone,
// two (A and D) tms saw alone.
func compareStops(t *testing.T, d *tmsproc.Deployment, publish func(topic, msg string), stopTopic string, base time.Time) {
	t.Helper()
	const plate = "沪G70002"
	origin := geo.Point{Lat: 31.35, Lng: 121.45}
	at := func(x float64) geo.Point { return geoworkload.Offset(origin, 0, x) }
	route := func(m float64) (x, speed float64) {
		switch {
		case m < 10:
			return 0, 0
		case m < 20:
			return 5000 * (m - 10) / 10, 30
		case m < 40:
			return 5000, 0
		case m < 50:
			return 5000 + 5000*(m-40)/10, 30
		case m < 70:
			return 10000, 0
		case m < 80:
			return 10000 + 5000*(m-70)/10, 30
		}
		return 15000, 0
	}
	batch := ""
	for s := 0; s <= 90*60; s += 10 {
		m := float64(s) / 60
		x, speed := route(m)
		p := at(x)
		if batch != "" {
			batch += ","
		}
		batch += fmt.Sprintf(`{"plateNum":%q,"lng":%.7f,"lat":%.7f,"speed":%v,"gps_time":%d}`, plate, p.Lng, p.Lat, speed,
			base.Add(time.Duration(s)*time.Second).UnixMilli())
		if s%600 == 0 {
			publish(d.Topic, `{"data":[`+batch+`]}`)
			batch = ""
		}
	}
	if batch != "" {
		publish(d.Topic, `{"data":[`+batch+`]}`)
	}
	ms := func(m float64) int64 { return base.Add(time.Duration(m * float64(time.Minute))).UnixMilli() }
	stopAt := func(start, end float64, p geo.Point) string {
		return fmt.Sprintf(`{"pushTime":%d,"data":{"plateNum":%q,"startTime":%d,"endTime":%d,"startLng":%.7f,"startLat":%.7f}}`,
			ms(end+1), plate, ms(start), ms(end), p.Lng, p.Lat)
	}
	b := geoworkload.Offset(at(5000), 30, 0)
	for _, msg := range []string{stopAt(20.5, 39.5, b), stopAt(50, 70, at(10000)), stopAt(15, 16, at(2500))} {
		publish(stopTopic, msg)
	}

	type pair struct {
		G7 struct {
			StartTime time.Time `json:"start_time"`
		}
		StartDiffS float64  `json:"start_diff_s"`
		EndDiffS   *float64 `json:"end_diff_s"`
		DistanceM  float64  `json:"distance_m"`
	}
	var cmp struct {
		Summary struct {
			G7Stops  int `json:"g7_stops"`
			TMSStops int `json:"tms_stops"`
			Matched  int
			OnlyG7   int `json:"only_g7"`
			OnlyTMS  int `json:"only_tms"`
		}
		Matched []pair
		OnlyG7  []struct {
			StartTime time.Time `json:"start_time"`
		} `json:"only_g7"`
	}
	path := "/api/v1/vehicles/" + url.PathEscape(plate) + "/g7-stops/comparison?from=" + url.QueryEscape(base.Add(-time.Minute).Format(time.RFC3339)) +
		"&to=" + url.QueryEscape(base.Add(2*time.Hour).Format(time.RFC3339))
	tmsproc.Eventually(t, time.Minute, "G7's three stops and tms's four in the comparison", func() bool {
		return d.Get(path, &cmp) == http.StatusOK && cmp.Summary.G7Stops == 3 && cmp.Summary.TMSStops == 4
	})
	if s := cmp.Summary; s.Matched != 2 || s.OnlyG7 != 1 || s.OnlyTMS != 2 {
		t.Fatalf("summary %+v, want 2 pairs, 1 G7 stop alone, 2 tms stops alone", s)
	}
	for i, want := range []struct{ start, startDiff, distance float64 }{{20.5, 30, 30}, {50, 0, 0}} {
		p := cmp.Matched[i]
		if !p.G7.StartTime.Equal(base.Add(time.Duration(want.start*60) * time.Second)) {
			t.Errorf("pair %d: G7 stop at %s", i, p.G7.StartTime)
		}
		// tms cuts its stops at fixes 10 s apart: a fix either way.
		if p.StartDiffS < want.startDiff-15 || p.StartDiffS > want.startDiff+15 || p.EndDiffS == nil ||
			p.DistanceM < want.distance-5 || p.DistanceM > want.distance+5 {
			t.Errorf("pair %d: %+v, want a start %v s apart (±15) and %v m (±5)", i, p, want.startDiff, want.distance)
		}
	}
	if !cmp.OnlyG7[0].StartTime.Equal(base.Add(15 * time.Minute)) {
		t.Errorf("G7's own stop: %+v", cmp.OnlyG7)
	}
}

// TestG7EventsSIGKILLMidStreamLoseAndDoubleNothing publishes G7 stop
// reports at QoS 1 (each event open, then closed) while tms is killed
// with SIGKILL and started again. The broker keeps what tms had not
// acknowledged; afterwards tms.g7events holds every report (some
// perhaps twice, with their ids: ingest is at least once) and the read
// model one row per event, closed.
func TestG7EventsSIGKILLMidStreamLoseAndDoubleNothing(t *testing.T) {
	t.Parallel()
	const events = 400
	stopTopic := testenv.Name("g7crash") + "/stop"
	d := newDeployment(t, "G7_MQTT_STOP_TOPIC="+stopTopic)
	d.Start()
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("g7publisher")).
		SetAutoReconnect(true).SetMaxResumePubInFlight(32))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	pubErr := make(chan error, 1)
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	go func() {
		for i := range events {
			begin := start.Add(time.Duration(i) * time.Second)
			for _, end := range []string{"null", fmt.Sprint(begin.Add(5 * time.Minute).UnixMilli())} {
				<-pace.C
				msg := fmt.Sprintf(`{"pushTime":%d,"data":{"plateNum":"沪K%05d","startTime":%d,"endTime":%s,"startLng":121.4,"startLat":31.2}}`,
					begin.Add(5*time.Minute).UnixMilli(), i%20, begin.UnixMilli(), end)
				if tok := pub.Publish(stopTopic, 1, false, msg); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					pubErr <- fmt.Errorf("publish %d: %v (a timed-out token is a failure)", i, tok.Error())
					return
				}
			}
		}
		pubErr <- nil
	}()
	tmsproc.Eventually(t, time.Minute, "tms storing G7 events", func() bool {
		return d.Count(`SELECT count(*) FROM g7_events`) >= events/5
	})
	d.Kill()
	stored := d.Count(`SELECT count(*) FROM g7_events WHERE NOT open`)
	t.Logf("SIGKILL with %d events closed in the read model", stored)
	if stored >= events {
		t.Fatalf("everything was stored before the kill; the test proves nothing")
	}
	d.Start()
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	tmsproc.Eventually(t, 2*time.Minute, "every event closed in the read model", func() bool {
		return d.Count(`SELECT count(*) FROM g7_events WHERE NOT open`) >= events
	})
	if n := d.Count(`SELECT count(*) FROM g7_events`); n != events {
		t.Errorf("%d rows, want one per event (%d)", n, events)
	}
	records, ids, _ := topicRecords(t, d, event.TopicG7Events)
	if len(ids) != 2*events || records < 2*events {
		t.Errorf("tms.g7events holds %d records of %d reports; want every one of the %d published", records, len(ids), 2*events)
	}
	d.Stop()
}
