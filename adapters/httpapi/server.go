package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Paths the engine serves. wsPath is also where auth accepts access_token.
const (
	apiPrefix = "/api/v1"
	wsPath    = apiPrefix + "/ws"
)

// server holds what the handlers share.
type server struct {
	cfg     Config
	tokens  []tokenEntry
	metrics *metrics
	log     *slog.Logger
	// byToken and byAddress are the request budgets (see RateLimit).
	byToken, byAddress *buckets
	ready              *readiness
	// tracks and exports bound the simplified tracks and the exports
	// under way (History.MaxTracks, History.MaxExports).
	tracks, exports slots
}

// New builds the query API from cfg: an http.Handler for cmd/ to serve.
// It fails on a config Validate rejects, or when the HTTP metrics cannot
// be registered.
func New(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return s.engine(), nil
}

func newServer(cfg Config) (*server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "httpapi")
	rl := cfg.RateLimit
	return &server{
		cfg: cfg, tokens: hashTokens(cfg.Tokens), metrics: m, log: log,
		// Only configured tokens get a bucket: there are len(Tokens) keys.
		byToken:   newBuckets("token", rl.TokenRate, rl.TokenBurst, len(cfg.Tokens)),
		byAddress: newBuckets("address", rl.AddressRate, rl.AddressBurst, rl.MaxAddresses),
		ready:     newReadiness(cfg.Checks, cfg.CheckTimeout, cfg.ReadinessInterval, m, log),
		tracks:    make(slots, cfg.History.MaxTracks),
		exports:   make(slots, cfg.History.MaxExports),
	}, nil
}

// engine builds the gin engine and its routes. Write routes are behind
// RequireRole(RoleOperator).
func (s *server) engine() *gin.Engine {
	e := gin.New()
	// Answer a wrong method with 405 and Allow, not with 404.
	e.HandleMethodNotAllowed = true
	// Route on the escaped path and unescape parameters afterwards, so a
	// plate with an encoded "/" stays one path segment (and is rejected as
	// a plate) instead of silently matching another route.
	e.UseEscapedPath = true
	e.UnescapePathValues = true
	// No gin.Logger: it would log query strings, and /api/v1/ws carries
	// tokens in its query string.
	e.Use(s.instrument, s.renderErrors, s.recover, s.rateLimit)
	e.NoRoute(s.dashboard, func(c *gin.Context) { fail(c, errNoRoute) })
	e.NoMethod(func(c *gin.Context) { fail(c, errNoMethod) })

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	})))

	api := e.Group(apiPrefix, s.authenticate)
	api.GET("/openapi.json", s.openAPI)
	api.GET("/session", s.session)
	api.GET("/vehicles", s.listVehicles)
	api.GET("/vehicles/:plate", s.getVehicle)
	api.GET("/vehicles/:plate/track", s.track)
	api.GET("/vehicles/:plate/trips", s.listTrips)
	api.GET("/vehicles/:plate/stops", s.listStops)
	api.GET("/vehicles/:plate/g7-events", s.listG7Events)
	api.GET("/vehicles/:plate/g7-stops/comparison", s.compareG7Stops)
	api.GET("/trips", s.listFleetTrips)
	api.GET("/trips/:id", s.getTrip)
	api.GET("/trips/:id/track", s.tripTrack)
	api.GET("/stations", s.listStations)
	api.GET("/stations/:id", s.getStation)
	api.GET("/visits", s.listVisits)
	api.GET("/replays", s.listReplays)
	api.GET("/replays/:id", s.getReplay)
	api.GET("/replays/:id/visits", s.listReplayVisits)
	api.GET("/rebuilds", s.listRebuilds)
	api.GET("/jobs", s.listJobs)
	api.GET("/jobs/:id", s.getJob)
	api.GET("/jobs/:id/track", s.jobTrack)
	api.GET("/exports/:kind", s.export)
	write := RequireRole(RoleOperator)
	api.POST("/stations", write, s.createStation)
	api.PUT("/stations/:id", write, s.putStation)
	api.DELETE("/stations/:id", write, s.deleteStation)
	api.POST("/jobs", write, s.createJob)
	api.POST("/jobs/:id/cancel", write, s.cancelJob)
	api.GET("/ws", s.websocket)
	return e
}

// dashboard serves the dashboard's files (Config.Dashboard) at the paths
// no route takes; it leaves every other request, and anything under /api/,
// to the 404 problem.
func (s *server) dashboard(c *gin.Context) {
	p := c.Request.URL.Path
	if s.cfg.Dashboard == nil || p == "/api" || strings.HasPrefix(p, "/api/") || !s.cfg.Dashboard.Serves(c.Request.Method, p) {
		return
	}
	c.Set(routeLabelKey, "dashboard")
	s.cfg.Dashboard.ServeHTTP(c.Writer, c.Request)
	c.Abort()
}

// websocket hands an authenticated request to the configured hub.
func (s *server) websocket(c *gin.Context) {
	if s.cfg.WebSocket == nil {
		fail(c, fmt.Errorf("%w: this instance does not serve the WebSocket", errNoRoute))
		return
	}
	if isUpgrade(c.Request) {
		// The server's read and write deadlines bound one request; a
		// WebSocket lives for hours, and the hub keeps its own deadlines
		// (pings, write timeouts) once it has the connection.
		rc := http.NewResponseController(c.Writer)
		for _, err := range []error{rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{})} {
			if err != nil && !errors.Is(err, http.ErrNotSupported) {
				s.log.WarnContext(c.Request.Context(), "cannot lift the HTTP deadlines for a WebSocket", "err", err)
			}
		}
	}
	s.cfg.WebSocket.ServeHTTP(c.Writer, c.Request)
}

// isUpgrade reports whether r asks to switch to the WebSocket protocol.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// queryContext bounds one read-model query.
func (s *server) queryContext(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
}

// fail records err for renderErrors and stops the handler chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err) // returns err wrapped for gin; renderErrors reads it back
	c.Abort()
}

// writeJSON answers v as contentType. Encoding first means a value that
// cannot be encoded (a NaN read from the database) becomes a clean 500
// instead of a truncated 200.
func writeJSON(c *gin.Context, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail(c, fmt.Errorf("encode %T: %w", v, err))
		return
	}
	c.Data(status, contentType, b)
}

// Content types the API answers with.
const (
	contentJSON    = "application/json; charset=utf-8"
	contentGeoJSON = "application/geo+json"
	contentProblem = "application/problem+json"
)
