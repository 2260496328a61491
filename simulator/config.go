package simulator

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultTopic is the topic published to when Config.Topic is empty.
	// tms's ingest subscribes to the topic it is configured with
	// (G7_MQTT_POSITION_TOPIC); give the simulator the same one.
	DefaultTopic = "g7/positions"
	// DefaultClientID identifies the simulator to the broker.
	DefaultClientID = "tms-simulator"
	// DefaultVehicles is the fleet size.
	DefaultVehicles = 100
	// DefaultInterval is how often each vehicle reports.
	DefaultInterval = time.Second
	// DefaultBatchSize is the number of fixes per message.
	DefaultBatchSize = 50
	// DefaultStringShare is the share of items with string-typed numbers,
	// about what real G7 feeds show.
	DefaultStringShare = 0.2
	// DefaultMaxInFlight is the number of messages awaiting their
	// acknowledgement at once.
	DefaultMaxInFlight = 64
	// DefaultAPIAttempts is how often one API request is tried when the
	// API is busy (429, 503) or does not answer.
	DefaultAPIAttempts = 6
	// DefaultAPITimeout bounds one API request. A job's create is
	// answered once the job processor has made it, up to the API's
	// TMS_JOB_COMMAND_TIMEOUT (20 s by default), so this is longer.
	DefaultAPITimeout = 60 * time.Second
	// DefaultAPIConcurrency is how many API requests are in flight at
	// once: stations, and different vehicles' jobs.
	DefaultAPIConcurrency = 16
)

// Config configures a Simulator. Zero values take the documented defaults.
type Config struct {
	// BrokerURL is the MQTT broker, e.g. tcp://host:1883 or
	// ssl://host:8883. Required.
	BrokerURL string
	// Topic is where batches are published. Default DefaultTopic; it must
	// be the topic tms ingests from, and may not contain wildcards.
	Topic string
	// ClientID identifies the client to the broker. Default
	// DefaultClientID. Two clients with one id disconnect each other:
	// give concurrent simulators their own.
	ClientID string
	// Username and Password authenticate the client. Never logged.
	Username, Password string
	// QoS of the published messages: 1 (the default) or 2. QoS 0 is
	// refused: unacknowledged messages could not be counted as published.
	QoS byte
	// TLS is used for ssl://, tls:// and wss:// brokers; nil takes the
	// system's roots.
	TLS *tls.Config

	// Seed makes the fleet and the messages repeatable: the same seed and
	// settings give the same plates, tracks and faults. 0 is a seed like
	// any other.
	Seed uint64
	// Vehicles is the fleet size, 1 to MaxVehicles. Default DefaultVehicles.
	Vehicles int
	// Area is where the fleet drives. Default Shanghai().
	Area Area
	// Dwell, when > 0, makes every stay at a site last Dwell x [0.5, 1.5)
	// instead of minutes (see WithDwell): with a small Area, a demo or a
	// test in real time sees jobs through in a minute or two.
	Dwell time.Duration

	// APIURL is the tms API's base URL, e.g. http://127.0.0.1:8080. When
	// it is set and answers, the area's sites are defined as stations
	// through it before the run (Area.StationID: a second run leaves them
	// as they are) and the Jobs are created through it. Empty, or not
	// answering without Jobs: positions only, as a log line says.
	APIURL string
	// APIToken is a token of the API's operator role. Never logged.
	APIToken string
	// Jobs is the number of jobs (WithJobs) created through the API, each
	// with new_vehicle and an external reference stable for the seed and
	// the area, and driven by their vehicles. 0 to MaxJobs; more than 0
	// needs APIURL and APIToken.
	Jobs int
	// APIAttempts is how often one API request is tried when the API
	// answers 429 or 503 (after its Retry-After, at most 30 s) or not at
	// all (after a backoff from 0.5 s, doubling, at most 8 s). Default
	// DefaultAPIAttempts.
	APIAttempts int
	// APITimeout bounds one API request. Default DefaultAPITimeout.
	APITimeout time.Duration
	// APIConcurrency bounds the API requests in flight. A job's vehicle
	// must not reach its first stop before the API has taken the job
	// (it would not be served), so jobs are sent at once, not in turns.
	// Default DefaultAPIConcurrency.
	APIConcurrency int

	// Interval is how often each vehicle reports, and how far the
	// simulated clock moves per round in Accelerated mode. Default
	// DefaultInterval; at least a millisecond, the resolution of gps_time.
	Interval time.Duration
	// RatePerSecond, when > 0, paces publishing to that many positions per
	// second overall, spread evenly, instead of one fix per vehicle per
	// Interval. Each vehicle then reports every Vehicles/RatePerSecond
	// seconds (in Accelerated mode its fixes are still Interval apart).
	RatePerSecond float64
	// BatchSize is the number of fixes per message, 1 to MaxBatchSize.
	// Default DefaultBatchSize.
	BatchSize int

	// Accelerated runs a simulated clock: round k's fixes are timed
	// Start + k*Interval, and rounds follow each other without waiting
	// (unless RatePerSecond paces them). Note that tms rejects fixes more
	// than a day ahead of their receipt: a long run from a past Start must
	// not overtake the present by that much.
	Accelerated bool
	// Start is the simulated clock's first time; only with Accelerated.
	// Default: the wall clock when Run starts.
	Start time.Time
	// Duration, when > 0, ends the run once this much simulated time has
	// been covered (in real time, this much time).
	Duration time.Duration
	// MaxPositions, when > 0, ends the run after this many positions.
	MaxPositions int64

	// FaultRate is the share of items made deliberately invalid, in
	// [0, 1], to show the dead-letter path. Default 0.
	FaultRate float64
	// StringShare is the share of items whose lng, lat and speed are
	// numeric strings. 0 takes DefaultStringShare; a negative value means
	// none.
	StringShare float64

	// MaxInFlight bounds the messages awaiting their acknowledgement; the
	// simulator waits when it is reached. Default DefaultMaxInFlight.
	MaxInFlight int
	// PublishTimeout is how long a message's acknowledgement is awaited
	// before the message counts as failed. Default 10s.
	PublishTimeout time.Duration
	// ConnectTimeout bounds one connection attempt. Default 10s.
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the back-off between reconnects.
	// Default 10s.
	MaxReconnectInterval time.Duration
	// LogEvery is how often a progress summary is logged. Default 10s.
	LogEvery time.Duration
	// Logger receives the summaries and connection events. Default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.QoS == 0 {
		c.QoS = 1
	}
	if c.Vehicles == 0 {
		c.Vehicles = DefaultVehicles
	}
	if c.Area.Name == "" && len(c.Area.Sites) == 0 {
		c.Area = Shanghai()
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	switch {
	case c.StringShare == 0:
		c.StringShare = DefaultStringShare
	case c.StringShare < 0:
		c.StringShare = 0
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = 10 * time.Second
	}
	if c.LogEvery == 0 {
		c.LogEvery = 10 * time.Second
	}
	if c.APIAttempts == 0 {
		c.APIAttempts = DefaultAPIAttempts
	}
	if c.APITimeout == 0 {
		c.APITimeout = DefaultAPITimeout
	}
	if c.APIConcurrency == 0 {
		c.APIConcurrency = DefaultAPIConcurrency
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work. New calls it after filling
// in the defaults.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("simulator: "+format, args...)) }
	if c.BrokerURL == "" {
		bad("a broker URL is required")
	} else if u, err := url.Parse(c.BrokerURL); err != nil || u.Scheme == "" || u.Host == "" {
		bad("broker URL %q: expected scheme://host:port", redact(c.BrokerURL))
	}
	if c.Topic == "" || strings.ContainsAny(c.Topic, "+#") {
		bad("topic %q: a topic to publish to is required, without wildcards", c.Topic)
	}
	if c.QoS < 1 || c.QoS > 2 {
		bad("QoS %d: 1 or 2", c.QoS)
	}
	if c.Vehicles < 1 || c.Vehicles > MaxVehicles {
		bad("%d vehicles: 1 to %d", c.Vehicles, MaxVehicles)
	}
	if err := c.Area.Validate(); err != nil {
		errs = append(errs, err)
	} else if c.APIURL != "" {
		errs = append(errs, c.Area.ValidateStations())
	}
	if c.Interval < time.Millisecond {
		bad("interval %s: at least 1ms, the resolution of gps_time", c.Interval)
	}
	if !(c.RatePerSecond >= 0) || math.IsInf(c.RatePerSecond, 0) {
		bad("rate %v per second: a finite rate >= 0 (0 for per-vehicle intervals)", c.RatePerSecond)
	} else if !c.Accelerated && c.RatePerSecond > float64(c.Vehicles)*1000 {
		// In real time each vehicle would report more than once a
		// millisecond: its fixes would share a gps_time, and tms would
		// take them for one fix delivered twice.
		bad("rate %v per second with %d vehicles: each vehicle would report more than once per millisecond; add vehicles", c.RatePerSecond, c.Vehicles)
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("batch size %d: 1 to %d", c.BatchSize, MaxBatchSize)
	}
	if !c.Start.IsZero() && !c.Accelerated {
		bad("a start time needs Accelerated; in real time fixes are timed by the clock")
	}
	if c.Duration < 0 || c.MaxPositions < 0 {
		bad("duration and max positions cannot be negative")
	}
	if !(c.FaultRate >= 0 && c.FaultRate <= 1) {
		bad("fault rate %v: in [0, 1]", c.FaultRate)
	}
	if !(c.StringShare >= 0 && c.StringShare <= 1) {
		bad("string share %v: in [0, 1]", c.StringShare)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > math.MaxUint16 {
		bad("max in flight %d: 1 to %d (MQTT packet ids)", c.MaxInFlight, math.MaxUint16)
	}
	if c.PublishTimeout <= 0 || c.ConnectTimeout <= 0 || c.MaxReconnectInterval <= 0 || c.LogEvery <= 0 {
		bad("timeouts and intervals must be positive")
	}
	if c.Dwell < 0 {
		bad("dwell %s: not negative (0 for the minutes a site's kind takes)", c.Dwell)
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("API URL %q: expected http://host:port or https://host", redact(c.APIURL))
		}
	}
	if strings.ContainsFunc(c.APIToken, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		bad("the API token holds spaces or control characters") // the token itself is not repeated
	}
	switch {
	case c.Jobs < 0 || c.Jobs > MaxJobs:
		bad("%d jobs: 0 to %d", c.Jobs, MaxJobs)
	case c.Jobs > 0 && (c.APIURL == "" || c.APIToken == ""):
		bad("%d jobs need the API: its URL and an operator token", c.Jobs)
	}
	if c.APIAttempts < 1 || c.APITimeout <= 0 || c.APIConcurrency < 1 {
		bad("API attempts (%d), timeout (%s) and concurrency (%d) must be positive", c.APIAttempts, c.APITimeout, c.APIConcurrency)
	}
	return errors.Join(errs...)
}

// redact removes credentials from a broker URL before it is logged.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
