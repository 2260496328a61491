package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the query API.
type Config struct {
	// Vehicles reads the vehicles read model. Required; cmd/ passes a
	// *vehicles.Store.
	Vehicles VehicleStore
	// Stations reads the stations read model. Required; cmd/ passes a
	// *stations.Store.
	Stations StationStore
	// Visits reads the visits read model (visits, vehicles' current
	// stations, who is inside a station). Required; cmd/ passes a
	// *visits.Store.
	Visits VisitStore
	// Replays reads the results of `tms replay geofence` (replay_runs,
	// replay_visits). Required; cmd/ passes a *replays.Store.
	Replays ReplayStore
	// Rebuilds reads the read-model rebuilds' progress (GET /rebuilds).
	// Required; cmd/ passes a *rebuild.Store.
	Rebuilds RebuildStore
	// StationCommands executes POST, PUT and DELETE on stations.
	// Required; cmd/ passes a *stationcmd.Commands.
	StationCommands StationCommands
	// Jobs reads the jobs read model. Required; cmd/ passes a
	// *jobs.Store.
	Jobs JobStore
	// JobCommands executes POST /jobs and POST /jobs/{id}/cancel.
	// Required; cmd/ passes a *jobcmd.Commands.
	JobCommands JobCommands
	// Trips reads the trips read model (trips and stops). Required; cmd/
	// passes a *trips.Store.
	Trips TripStore
	// G7Events reads G7's stop, idle and EMS events (the g7events read
	// model). Required; cmd/ passes a *g7events.Store.
	G7Events G7EventStore
	// PlaybackMaxFixes bounds the fixes GET /jobs/{id}/track?format=playback
	// reads to measure a job's window: the distances it shows are measured
	// over the whole window, whatever page is asked for, as the job's
	// completion is. A window of more fixes is answered 400 (page through
	// it as json or geojson instead). Default 100,000, the fixes the job
	// processor keeps per vehicle (TMS_JOBS_MAX_TRACK_FIXES).
	PlaybackMaxFixes int
	// Tokens maps each accepted bearer token to its role (ParseTokens
	// reads TMS_API_TOKENS into it). Required: without a token every
	// /api/v1 request would be refused, which is never what was meant.
	Tokens map[string]Role
	// Checks are what GET /readyz runs, concurrently, each bounded by
	// CheckTimeout: typically Postgres, Kafka and MQTT reachable. Names
	// must be unique. None means always ready.
	Checks []Check
	// CheckTimeout bounds each readiness check. Default 2 s; a
	// Kubernetes readiness probe's timeoutSeconds must exceed it, or the
	// probe gives up before /readyz can say what failed.
	CheckTimeout time.Duration
	// WebSocket, when set, serves GET /api/v1/ws once the caller is
	// authenticated; RoleFrom gives it the caller's role. Nil answers that
	// route with 404, for instances that do not run the hub.
	WebSocket http.Handler
	// Dashboard, when set, serves the web dashboard's files
	// (adapters/dashboard): GET and HEAD of the paths it Serves, outside
	// /api/, without a token (they are the same for everyone and hold no
	// data). Nil answers them with 404, as any unknown path.
	Dashboard StaticFiles
	// Session is how clients should show the fleet: GET /api/v1/session
	// hands it out (with the caller's role).
	Session SessionSettings
	// Registerer receives the HTTP metrics (tms_http_*). Default: a
	// registry of the API's own, which then also serves as the Gatherer.
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics exposes: normally the process's
	// registry, so that one scrape sees every role's metrics. Default:
	// the Registerer, when it is also a Gatherer (a *prometheus.Registry
	// is both).
	Gatherer prometheus.Gatherer
	// ReadinessInterval is the shortest time between two runs of the
	// Checks: GET /readyz answers from the last run when it is younger,
	// and concurrent requests share one run, so a flood of /readyz costs
	// the dependencies at most one probe per interval. Default 1 s.
	ReadinessInterval time.Duration
	// QueryTimeout bounds each read-model query, so that a slow database
	// sheds requests instead of piling them up. Default 10 s.
	QueryTimeout time.Duration
	// RateLimit bounds how many requests a client may make.
	RateLimit RateLimit
	// History bounds simplified tracks and exports (issue 9, history).
	History History
	// Logger receives server-side errors (never tokens). Default: slog's.
	Logger *slog.Logger
	// Now is the clock the default track and visits windows end at.
	// Default time.Now; tests pin it.
	Now func() time.Time
}

// RateLimit is the request rate each client is allowed: a token bucket
// per bearer token for requests that carry a valid one, and one per
// remote address (an IPv6 address by its /64) for every other request
// (the open routes /healthz, /readyz and /metrics, and failed
// authentication). The two are apart, so that a flood of unauthenticated
// requests from an address never spends the budget of a token used from
// the same address. A request over its budget is answered 429 with
// Retry-After.
type RateLimit struct {
	// TokenRate is the sustained requests per second of one token, shared
	// by every client using it. Default 100.
	TokenRate float64
	// TokenBurst is how many requests a token may make at once after a
	// quiet spell. Default 200.
	TokenBurst int
	// AddressRate is the sustained requests per second of one remote
	// address without a valid token. Default 10.
	AddressRate float64
	// AddressBurst is the burst of one address. Default 20.
	AddressBurst int
	// MaxAddresses bounds how many addresses are tracked at once, so that
	// requests from many addresses cannot grow memory: idle addresses
	// (whose bucket has filled up again) are forgotten, and when every
	// tracked address is busy, new addresses share one bucket of
	// AddressRate and AddressBurst until some go idle. Default 10,000.
	MaxAddresses int
	// RefusalPause is how long a request over its budget waits before its
	// 429 (at most until it would have been allowed). It costs a client
	// that honours Retry-After nothing, and holds one that floods request
	// after request on a connection to a few a second there. Default
	// 500 ms.
	RefusalPause time.Duration
}

func (r *RateLimit) setDefaults() {
	if r.TokenRate == 0 {
		r.TokenRate = 100
	}
	if r.TokenBurst == 0 {
		r.TokenBurst = 200
	}
	if r.AddressRate == 0 {
		r.AddressRate = 10
	}
	if r.AddressBurst == 0 {
		r.AddressBurst = 20
	}
	if r.MaxAddresses == 0 {
		r.MaxAddresses = 10_000
	}
	if r.RefusalPause == 0 {
		r.RefusalPause = 500 * time.Millisecond
	}
}

func (r *RateLimit) validate() []error {
	var errs []error
	if r.TokenRate < 0 || r.AddressRate < 0 || math.IsNaN(r.TokenRate) || math.IsNaN(r.AddressRate) {
		errs = append(errs, errors.New("rate limit: rates must be positive numbers of requests per second"))
	}
	if r.TokenBurst < 0 || r.AddressBurst < 0 {
		errs = append(errs, errors.New("rate limit: bursts must be positive"))
	}
	if r.MaxAddresses < 0 {
		errs = append(errs, errors.New("rate limit: MaxAddresses must be positive"))
	}
	if r.RefusalPause < 0 {
		errs = append(errs, errors.New("rate limit: RefusalPause must be positive"))
	}
	return errs
}

// StaticFiles serves files outside the API: cmd/ passes a
// *dashboard.Handler.
type StaticFiles interface {
	http.Handler
	// Serves reports whether ServeHTTP has a file for a request of method
	// at the URL path p. The API never asks about paths under /api/.
	Serves(method, p string) bool
}

// Check is one readiness check. Name labels it in /readyz's answer; Check
// reports whether the dependency answers. Check must return when its
// context is done: one that does not is reported as failed at the deadline
// and left to finish on its own.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

func (c *Config) setDefaults() {
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 2 * time.Second
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 10 * time.Second
	}
	if c.ReadinessInterval == 0 {
		c.ReadinessInterval = time.Second
	}
	if c.PlaybackMaxFixes == 0 {
		c.PlaybackMaxFixes = 100_000
	}
	c.RateLimit.setDefaults()
	c.History.setDefaults()
	c.Session.setDefaults()
	if c.Registerer == nil && c.Gatherer == nil {
		reg := prometheus.NewRegistry()
		c.Registerer, c.Gatherer = reg, reg
	}
	if g, ok := c.Registerer.(prometheus.Gatherer); ok && c.Gatherer == nil {
		c.Gatherer = g
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a config that cannot work. Zero values that
// setDefaults fills in are accepted.
func (c *Config) Validate() error {
	var errs []error
	if c.Vehicles == nil {
		errs = append(errs, errors.New("no Vehicles store"))
	}
	if c.Stations == nil || c.Visits == nil {
		errs = append(errs, errors.New("no Stations or Visits store"))
	}
	if c.Replays == nil {
		errs = append(errs, errors.New("no Replays store"))
	}
	if c.Rebuilds == nil {
		errs = append(errs, errors.New("no Rebuilds store"))
	}
	if c.StationCommands == nil {
		errs = append(errs, errors.New("no StationCommands"))
	}
	if c.Jobs == nil || c.JobCommands == nil {
		errs = append(errs, errors.New("no Jobs store or JobCommands"))
	}
	if c.G7Events == nil {
		errs = append(errs, errors.New("no G7Events store"))
	}
	if c.Trips == nil {
		errs = append(errs, errors.New("no Trips store"))
	}
	if c.PlaybackMaxFixes < 0 {
		errs = append(errs, errors.New("PlaybackMaxFixes must be positive"))
	}
	if len(c.Tokens) == 0 {
		errs = append(errs, errors.New("no API tokens: every /api/v1 request would be refused (set TMS_API_TOKENS)"))
	}
	for token, role := range c.Tokens {
		if token == "" {
			errs = append(errs, errors.New("an API token is empty"))
		}
		if _, err := ParseRole(string(role)); err != nil {
			// Name the role, never the token: tokens must not reach logs.
			errs = append(errs, fmt.Errorf("an API token has an %w", err))
		}
	}
	seen := make(map[string]bool, len(c.Checks))
	for i, ch := range c.Checks {
		switch {
		case ch.Name == "":
			errs = append(errs, fmt.Errorf("readiness check %d has no name", i))
		case seen[ch.Name]:
			errs = append(errs, fmt.Errorf("readiness check %q is configured twice", ch.Name))
		}
		seen[ch.Name] = true
		if ch.Check == nil {
			errs = append(errs, fmt.Errorf("readiness check %q has no function", ch.Name))
		}
	}
	if c.CheckTimeout < 0 || c.QueryTimeout < 0 || c.ReadinessInterval < 0 {
		errs = append(errs, errors.New("timeouts and intervals must not be negative"))
	}
	errs = append(errs, c.RateLimit.validate()...)
	errs = append(errs, c.History.validate()...)
	errs = append(errs, c.Session.validate()...)
	if c.Gatherer == nil && c.Registerer != nil {
		if _, ok := c.Registerer.(prometheus.Gatherer); !ok {
			errs = append(errs, errors.New("no Gatherer, and the Registerer is not one: /metrics would have nothing to serve"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	return nil
}
