// Package dashctl is the control server of the dashboard's browser tests.
//
// Those tests drive a real page in Chromium against a real `tms serve` fed
// by the simulator, and some of what they check needs things to happen
// that the page cannot cause and the simulator does not do on cue: a
// vehicle driving into the station the test has just drawn, at a known
// time; the service going away and coming back, to see the page
// reconnect. The Go test that starts tms (e2e's TestDashboardInBrowser)
// therefore also starts this server on loopback and gives its URL to the
// Node tests (TMS_DASH_CONTROL), which ask for those things over plain
// HTTP:
//
//   - POST /drive {"plate": "沪Z00001", "points": [[lng, lat], ...],
//     "interval_s": 2} publishes one fix per point over MQTT, in the G7
//     batch format the simulator uses (one message, QoS 1, to the
//     deployment's topic). Fix times end now: the first is
//     now - (n-1)*interval. Speed and course are those of the leg from
//     the point before (the first point takes the first leg's). It answers
//     204 once the broker has acknowledged the message; 400 with the
//     reason for a body it cannot use (a fix tms would reject included:
//     the message is checked with tms's own G7 parser before it is sent),
//     413 for a body over Config.MaxBodyBytes, 502 when the broker did not
//     acknowledge in time.
//   - POST /stop ends `tms serve` gracefully (SIGTERM) and answers 204
//     once it has exited.
//   - POST /start starts it again (same address, database, topics and
//     data) and answers 204 once /readyz says it is ready.
//
// A stop of a stopped service, or a start of a running one, is 409.
// Requests are served one at a time: a drive never overlaps a restart.
//
// The server is a test helper, not part of tms: it has no authentication
// and must only listen on loopback.
package dashctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/adapters/g7"
	"github.com/tmsfleet/tms/simulator"
)

// Service is the `tms serve` the server stops and starts
// (tmsproc.Deployment is one).
type Service interface {
	// TryStop ends the service gracefully and returns once it has exited,
	// or why it could not.
	TryStop(ctx context.Context) error
	// TryStart starts the service and returns once it is ready to serve,
	// or why it is not.
	TryStart(ctx context.Context) error
}

// Defaults of Config.
const (
	// DefaultClientID identifies the server's MQTT client.
	DefaultClientID = "tms-dashctl"
	// DefaultMaxPoints bounds the points of one drive: one G7 message,
	// which the simulator bounds the same way.
	DefaultMaxPoints = simulator.MaxBatchSize
	// DefaultMaxBodyBytes bounds a request body.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultInterval is the time between two fixes of a drive that does
	// not say (interval_s).
	DefaultInterval = time.Second
	// DefaultMaxInterval bounds interval_s.
	DefaultMaxInterval = time.Hour
	// DefaultPublishTimeout bounds the wait for the broker's
	// acknowledgement of a drive, and the connection to it.
	DefaultPublishTimeout = 10 * time.Second
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// BrokerURL is the MQTT broker tms ingests from. Required.
	BrokerURL string
	// Topic is the G7 position topic tms subscribes to. Required.
	Topic string
	// ClientID is the server's MQTT client id. Default DefaultClientID;
	// two clients with one id disconnect each other.
	ClientID string
	// Service is what /stop and /start act on. Required.
	Service Service
	// MaxPoints bounds the points of one drive, 1 to
	// simulator.MaxBatchSize. Default DefaultMaxPoints.
	MaxPoints int
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxInterval bounds a drive's interval_s. Default
	// DefaultMaxInterval.
	MaxInterval time.Duration
	// PublishTimeout bounds the connection to the broker and the wait for
	// a drive's acknowledgement. Default DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Logger receives a line per request. Default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.MaxPoints == 0 {
		c.MaxPoints = DefaultMaxPoints
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = DefaultMaxInterval
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of a config New cannot work with.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("dashctl: "+format, args...)) }
	if c.BrokerURL == "" {
		bad("a broker URL is required")
	}
	if c.Topic == "" || strings.ContainsAny(c.Topic, "+#") {
		bad("topic %q: a topic to publish to is required, without wildcards", c.Topic)
	}
	if c.Service == nil {
		bad("a service to stop and start is required")
	}
	if c.MaxPoints < 1 || c.MaxPoints > simulator.MaxBatchSize {
		bad("max points %d: 1 to %d (one G7 message)", c.MaxPoints, simulator.MaxBatchSize)
	}
	if c.MaxBodyBytes < 1 {
		bad("max body bytes %d: at least 1", c.MaxBodyBytes)
	}
	if c.MaxInterval < time.Millisecond {
		bad("max interval %s: at least 1ms, the resolution of gps_time", c.MaxInterval)
	}
	if c.PublishTimeout <= 0 {
		bad("publish timeout %s: positive", c.PublishTimeout)
	}
	return errors.Join(errs...)
}

// Server is the control server: an http.Handler. Close disconnects it
// from the broker.
type Server struct {
	cfg    Config
	client paho.Client
	mux    *http.ServeMux
	// mu serves requests one at a time.
	mu sync.Mutex
	// stopped says whether /stop has stopped the service and /start has
	// not started it since. The service runs when New is called.
	stopped bool
	now     func() time.Time
}

// New connects to the broker and returns the server. The service is
// taken to be running.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := paho.NewClientOptions().
		AddBroker(cfg.BrokerURL).
		SetClientID(cfg.ClientID).
		SetCleanSession(true).
		SetConnectTimeout(cfg.PublishTimeout).
		SetWriteTimeout(cfg.PublishTimeout).
		SetAutoReconnect(true)
	s := &Server{cfg: cfg, client: paho.NewClient(opts), mux: http.NewServeMux(), now: time.Now}
	tok := s.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("dashctl: connect to the broker: %w", err)
		}
	case <-ctx.Done():
		s.client.Disconnect(0)
		return nil, fmt.Errorf("dashctl: connect to the broker: %w", ctx.Err())
	}
	s.mux.HandleFunc("POST /drive", s.drive)
	s.mux.HandleFunc("POST /stop", s.stop)
	s.mux.HandleFunc("POST /start", s.start)
	return s, nil
}

// Close disconnects from the broker.
func (s *Server) Close() { s.client.Disconnect(250) }

// ServeHTTP serves one request at a time.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	began := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.cfg.Logger.Info("dashctl", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"took", time.Since(began).Round(time.Millisecond))
}

// driveRequest is the body of POST /drive.
type driveRequest struct {
	Plate     string      `json:"plate"`
	Points    [][]float64 `json:"points"`
	IntervalS *float64    `json:"interval_s"`
}

func (s *Server) drive(w http.ResponseWriter, r *http.Request) {
	var req driveRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
		http.Error(w, fmt.Sprintf("the body is over %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	now := s.now()
	fixes, err := s.fixes(req, now)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	payload, _ := simulator.Encoding{}.Encode(nil, fixes, nil)
	// What tms's ingest would make of it: a fix it would reject (out of
	// range, a speed no truck reaches) is the request's mistake, and said
	// so now rather than found missing later.
	batch := g7.Parse(payload, now)
	if batch.Rejection != nil {
		http.Error(w, "the G7 message: "+batch.Rejection.Error(), http.StatusBadRequest)
		return
	}
	for i, it := range batch.Items {
		if it.Rejection != nil {
			http.Error(w, fmt.Sprintf("points[%d]: tms would reject its fix: %v", i, it.Rejection), http.StatusBadRequest)
			return
		}
	}
	tok := s.client.Publish(s.cfg.Topic, 1, false, payload)
	if !tok.WaitTimeout(s.cfg.PublishTimeout) {
		http.Error(w, fmt.Sprintf("the broker did not acknowledge within %s", s.cfg.PublishTimeout), http.StatusBadGateway)
		return
	}
	if err := tok.Error(); err != nil {
		http.Error(w, "publish: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fixes turns a drive into its fixes, the last at now.
func (s *Server) fixes(req driveRequest, now time.Time) ([]simulator.Fix, error) {
	n := len(req.Points)
	switch {
	case strings.TrimSpace(req.Plate) == "":
		return nil, errors.New("plate: required")
	case n == 0:
		return nil, errors.New("points: at least one [lng, lat]")
	case n > s.cfg.MaxPoints:
		return nil, fmt.Errorf("points: %d, at most %d", n, s.cfg.MaxPoints)
	}
	interval := DefaultInterval
	if req.IntervalS != nil {
		v := *req.IntervalS
		if !(v*1000 >= 1 && v <= s.cfg.MaxInterval.Seconds()) {
			return nil, fmt.Errorf("interval_s: %v, from 0.001 (gps_time's resolution) to %v", v, s.cfg.MaxInterval.Seconds())
		}
		interval = time.Duration(math.Round(v*1000)) * time.Millisecond
	}
	for i, p := range req.Points {
		switch {
		case len(p) != 2:
			return nil, fmt.Errorf("points[%d]: %d numbers, want [lng, lat]", i, len(p))
		case !(p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90):
			return nil, fmt.Errorf("points[%d]: [%v, %v] is not a WGS84 [lng, lat]", i, p[0], p[1])
		}
	}
	first := now.Add(-time.Duration(n-1) * interval)
	fixes := make([]simulator.Fix, n)
	for i, p := range req.Points {
		fixes[i] = simulator.Fix{Plate: req.Plate, Time: first.Add(time.Duration(i) * interval), Lng: p[0], Lat: p[1]}
		// The leg that ends at this point; the first point takes the
		// first leg's speed and course, as a vehicle already under way.
		from, to := i-1, i
		if i == 0 {
			from, to = 0, 1
		}
		if to < n {
			a, b := req.Points[from], req.Points[to]
			fixes[i].SpeedKmh = distanceM(a, b) / interval.Seconds() * 3.6
			fixes[i].Course = bearing(a, b)
		}
	}
	return fixes, nil
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	if s.stopped {
		http.Error(w, "tms serve is stopped already", http.StatusConflict)
		return
	}
	// A client that gives up must not leave tms half stopped: the
	// service bounds the stop itself.
	err := s.cfg.Service.TryStop(context.WithoutCancel(r.Context()))
	s.stopped = true // whatever the outcome, the process is gone
	if err != nil {
		http.Error(w, "stop: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	if !s.stopped {
		http.Error(w, "tms serve is running already", http.StatusConflict)
		return
	}
	if err := s.cfg.Service.TryStart(context.WithoutCancel(r.Context())); err != nil {
		http.Error(w, "start: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.stopped = false
	w.WriteHeader(http.StatusNoContent)
}

// earthRadiusM is the mean Earth radius.
const earthRadiusM = 6_371_000

// distanceM is the great-circle distance between two [lng, lat] points.
func distanceM(a, b []float64) float64 {
	rad := math.Pi / 180
	lat1, lat2 := a[1]*rad, b[1]*rad
	dLat, dLng := lat2-lat1, (b[0]-a[0])*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Sqrt(math.Min(1, h)))
}

// bearing is the initial course from a to b, degrees clockwise from north
// in [0, 360); 0 when they coincide.
func bearing(a, b []float64) float64 {
	rad := math.Pi / 180
	lat1, lat2 := a[1]*rad, b[1]*rad
	dLng := (b[0] - a[0]) * rad
	y := math.Sin(dLng) * math.Cos(lat2)
	x := math.Cos(lat1)*math.Sin(lat2) - math.Sin(lat1)*math.Cos(lat2)*math.Cos(dLng)
	if x == 0 && y == 0 {
		return 0
	}
	return math.Mod(math.Atan2(y, x)/rad+360, 360)
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
