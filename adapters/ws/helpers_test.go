package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/metricstest"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// readGuard bounds every read in these tests. It is a failure guard, not
// a synchronisation: no test waits for it to pass.
const readGuard = 30 * time.Second

// t0 is the fix time the test events start from.
var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// fakeSnapshot is a table-driven stand-in for the vehicles read model
// (the Postgres query is tested in projections/vehicles and in
// TestSnapshotFromPostgres). It filters its table as the Store does.
type fakeSnapshot struct {
	table []vehicles.Vehicle
	// calls, when set, receives each query as List starts.
	calls chan vehicles.ListQuery
	// gate, when set, holds List until it is closed (or ctx ends, unless
	// stuck).
	gate chan struct{}
	// stuck makes List ignore ctx while the gate holds it, as a database
	// call that hangs would.
	stuck bool
	err   error
}

func (f *fakeSnapshot) List(ctx context.Context, q vehicles.ListQuery) ([]vehicles.Vehicle, error) {
	if f.calls != nil {
		f.calls <- q
	}
	if f.gate != nil && f.stuck {
		<-f.gate
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	var out []vehicles.Vehicle
	for _, v := range f.table {
		if len(q.Plates) > 0 && !slices.Contains(q.Plates, v.Plate) {
			continue
		}
		if q.BBox != nil && !q.BBox.Contains(v.Lat, v.Lng) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, v)
	}
	return out, nil
}

type harness struct {
	hub *ws.Hub
	srv *httptest.Server
	reg *prometheus.Registry
}

type harnessOpt func(*ws.Config, *httptest.Server)

// callerHeader names the test's stand-in for the caller identity that
// the API's auth middleware gives the hub (a digest of the token).
const callerHeader = "X-Test-Caller"

// byCallerHeader makes the hub tell callers apart by callerHeader.
func byCallerHeader() harnessOpt {
	return func(cfg *ws.Config, _ *httptest.Server) {
		cfg.Caller = func(r *http.Request) string { return r.Header.Get(callerHeader) }
	}
}

// smallSocketBuffers makes the server's send buffer small, so that a
// client that stops reading stalls the hub's writes after a few frames
// instead of after the megabytes the kernel would otherwise buffer.
func smallSocketBuffers() harnessOpt {
	return func(_ *ws.Config, srv *httptest.Server) {
		srv.Listener = smallBufListener{srv.Listener}
	}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func newHarness(t testing.TB, cfg ws.Config, opts ...harnessOpt) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if cfg.Snapshot == nil {
		cfg.Snapshot = &fakeSnapshot{}
	}
	srv := httptest.NewUnstartedServer(nil)
	for _, o := range opts {
		o(&cfg, srv)
	}
	hub, err := ws.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = hub
	srv.Start()
	t.Cleanup(func() {
		_ = hub.Close()
		srv.Close()
	})
	return &harness{hub: hub, srv: srv, reg: reg}
}

func (h *harness) url() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") }

// metric returns the value of a counter or gauge, summed over its labels.
func (h *harness) metric(t testing.TB, name string) float64 {
	t.Helper()
	return gatheredSum(t, h.reg, name)
}

// gatheredSum returns the value of a counter or gauge (a histogram's
// count) summed over the series of name, which may select one label
// value: "tms_ws_frames_sent_total{type=event}".
func gatheredSum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	var labels []string
	if i := strings.IndexByte(name, '{'); i >= 0 {
		label, want, _ := strings.Cut(strings.TrimSuffix(name[i+1:], "}"), "=")
		name, labels = name[:i], []string{label, want}
	}
	return metricstest.Sum(t, reg, name, labels...)
}

// frame is any frame the server sends.
type frame struct {
	Type      string               `json:"type"`
	Seq       int64                `json:"seq"`
	Filter    *ws.Filter           `json:"filter"`
	Counts    *ws.FilterCounts     `json:"counts"`
	Vehicles  []ws.SnapshotVehicle `json:"vehicles"`
	Truncated bool                 `json:"truncated"`
	Event     *event.Envelope      `json:"event"`
	Field     string               `json:"field"`
	Index     *int                 `json:"index"`
	Detail    string               `json:"detail"`
	// Replays' frames.
	ReplayID  string    `json:"replay_id"`
	ReplaySeq int64     `json:"replay_seq"`
	Vehicle   string    `json:"vehicle"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Speed     float64   `json:"speed"`
	State     string    `json:"state"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason"`
	Frames    int64     `json:"frames"`
	// raw is the frame as received.
	raw []byte
}

// wsClient is a real WebSocket client that checks, on every frame, that
// seq grew by exactly one.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	seq  int64
}

type dialOpt func(*websocket.Dialer)

// smallReadBuffer shrinks the client's socket receive buffer, so that a
// client that stops reading is felt by the server after a few frames.
func smallReadBuffer() dialOpt {
	return func(d *websocket.Dialer) {
		d.ReadBufferSize = 1024
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			return c, err
		}
	}
}

func (h *harness) dial(t testing.TB, opts ...dialOpt) *wsClient {
	t.Helper()
	return h.dialWith(t, nil, opts...)
}

// dialAs dials as caller (see byCallerHeader).
func (h *harness) dialAs(t testing.TB, caller string, opts ...dialOpt) *wsClient {
	t.Helper()
	return h.dialWith(t, http.Header{callerHeader: {caller}}, opts...)
}

func (h *harness) dialWith(t testing.TB, header http.Header, opts ...dialOpt) *wsClient {
	t.Helper()
	d := *websocket.DefaultDialer
	for _, o := range opts {
		o(&d)
	}
	conn, resp, err := d.DialContext(t.Context(), h.url(), header)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &wsClient{t: t, conn: conn}
}

// tryDial dials with header and returns the HTTP status and, for a
// refusal, its problem document; a connection that upgraded is closed.
func (h *harness) tryDial(t testing.TB, header http.Header) (status int, p problemDoc) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.DialContext(t.Context(), h.url(), header)
	if conn != nil {
		_ = conn.Close()
		return httpStatus(resp), p
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("refusal %d has content type %q, want a problem", resp.StatusCode, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Errorf("refusal %d: problem: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, p
}

// problemDoc is an RFC 9457 problem as the hub answers refusals.
type problemDoc struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func (c *wsClient) send(msg string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// read returns the next frame, or what is wrong with it, or the error
// that ended the connection. It is safe to call from any goroutine.
func (c *wsClient) read() (frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(readGuard))
	typ, msg, err := c.conn.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.TextMessage {
		return frame{}, fmt.Errorf("frame of websocket type %d, want text", typ)
	}
	var f frame
	if err := json.Unmarshal(msg, &f); err != nil {
		return frame{}, fmt.Errorf("frame %s: %w", msg, err)
	}
	f.raw = msg
	if f.Seq != c.seq+1 {
		return frame{}, fmt.Errorf("seq %d after %d: %s", f.Seq, c.seq, msg)
	}
	c.seq = f.Seq
	return f, nil
}

func (c *wsClient) next() frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *wsClient) nextOf(typ string) frame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("frame %+v, want type %s", f, typ)
	}
	return f
}

// subscribe sends a subscribe and reads its subscribed frame and, when
// withSnapshot, its snapshot.
func (c *wsClient) subscribe(body string, withSnapshot bool) (subscribed, snapshot frame) {
	c.t.Helper()
	c.send(`{"subscribe":` + body + `}`)
	subscribed = c.nextOf(ws.FrameSubscribed)
	if withSnapshot {
		snapshot = c.nextOf(ws.FrameSnapshot)
	}
	return subscribed, snapshot
}

// closeCode reads until the connection closes and returns its close
// frame, counting the frames before it.
func (c *wsClient) closeCode() (code int, text string, frames int) {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			frames++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want a close frame", err)
		}
		return ce.Code, ce.Text, frames
	}
}

func pos(t testing.TB, plate string, fix time.Time, lat, lng float64) event.Envelope {
	t.Helper()
	course := 90.0
	p := position.Position{Plate: plate, FixTime: fix, ReceivedAt: fix.Add(time.Second),
		Lat: lat, Lng: lng, SpeedKmh: 42.5, Course: &course}
	e, err := p.Event("/test")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// geofenceEvent is an entered/exited-station event shaped as the design
// describes (its producer is being written elsewhere).
func geofenceEvent(t testing.TB, typ, plate, station string, at time.Time, lat, lng float64) event.Envelope {
	t.Helper()
	data := map[string]any{"vehicle": plate, "station_id": station, "station_type": "loading",
		"visit_id": plate + "/" + station, "fix_time": at, "lat": lat, "lng": lng, "flags": []string{}}
	e, err := event.New(typ, "/test", plate, at, data, plate, station, at.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// g7Event is a G7 report of an event still open, as ingest encodes it.
func g7Event(t testing.TB, plate string, kind g7event.Kind, at time.Time, lat, lng float64) event.Envelope {
	t.Helper()
	r := g7event.Report{Plate: plate, Kind: kind, Start: at, StartLat: lat, StartLng: lng, ReceivedAt: at}
	e, err := r.Event("/test")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func jobEvent(t testing.TB, plate, job string, at time.Time) event.Envelope {
	t.Helper()
	e, err := event.New(event.TypeJobCreated, "/test", plate, at, map[string]any{"job_id": job, "vehicle": plate}, job)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func stationEvent(t testing.TB, id string, at time.Time) event.Envelope {
	t.Helper()
	data := map[string]any{"id": id, "name": id, "type": "loading",
		"geometry": map[string]any{"type": "Point", "coordinates": []float64{121.5, 31.2}}, "radius_m": 300}
	e, err := event.New(event.TypeStationUpserted, "/test", id, at, data, id, at.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func plateAndFix(t testing.TB, f frame) (string, time.Time) {
	t.Helper()
	if f.Type != ws.FrameEvent || f.Event == nil || f.Event.Type != event.TypePositionReported {
		t.Fatalf("frame %+v, want a position event", f)
	}
	return f.Event.Subject, f.Event.Time
}

// httpStatus returns the status of a failed dial.
func httpStatus(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}
