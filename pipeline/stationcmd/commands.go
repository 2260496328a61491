package stationcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/commandlog"
	"github.com/tmsfleet/tms/projections/stations"
)

// Source is the default CloudEvents source of station events.
const Source = "/tms/api"

// ErrUnavailable: the command could not be decided in time, because the
// stations read model is behind tms.stations or another command on the
// same station held it up. Nothing was produced; the client may retry.
var ErrUnavailable = errors.New("station commands are unavailable")

// Config configures the station commands.
type Config struct {
	// Kafka is how to reach the brokers; events go to tms.stations in its
	// namespace.
	Kafka *kafka.Config
	// Pool is the read models' Postgres: the stations table, the stations
	// projection's offsets, and the advisory locks.
	Pool *pgxpool.Pool
	// Rules bound what a definition may cost to accept (its positions);
	// Parse reads definitions under them and Create and Put check them.
	// The zero value takes station's defaults.
	Rules station.Rules
	// Indexer tells whether the geofence can index a station's shape:
	// cmd/ passes the configuration the geofence's H3 index is built with.
	// Nil accepts every valid shape (an index without limits, such as the
	// brute-force one).
	Indexer Indexer
	// Source is the events' CloudEvents source. Default Source.
	Source string
	// Timeout bounds each of a command's two waits: for the lock and the
	// read model before deciding (then ErrUnavailable), and for the read
	// model to show the event after producing it (then the result is
	// Accepted). Default 5 s.
	Timeout time.Duration
	// ProduceTimeout bounds producing the event. The produce does not end
	// with the client's request: a decided command is appended or fails
	// on its own. Default 10 s.
	ProduceTimeout time.Duration
	// Now is the clock commands take their time from. Default time.Now.
	Now func() time.Time
	// NewID makes an id for a station created without one. Default a
	// random UUID.
	NewID func() string
	// Registerer receives the commands' metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Source == "" {
		c.Source = Source
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.NewString
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work: every problem, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Kafka == nil || c.Pool == nil {
		errs = append(errs, errors.New("stationcmd: Kafka and Pool are required"))
	}
	if c.Timeout < 0 || c.ProduceTimeout < 0 {
		errs = append(errs, errors.New("stationcmd: timeouts must not be negative"))
	}
	if err := c.Rules.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("stationcmd: %w", err))
	}
	return errors.Join(errs...)
}

// Indexer is what the commands need of the geofence's index: whether it
// can index a shape. A station it cannot index would be accepted and then
// never detected, so the commands refuse it instead.
type Indexer interface {
	// Indexable returns nil if the geofence's index accepts s, or an
	// error saying why not, which is shown to the client. It must be safe
	// for concurrent use and cheap: it runs in every create and put.
	Indexable(s geofence.Shape) error
}

// Commands executes station commands. It is safe for concurrent use.
type Commands struct {
	cfg Config
	// commands is tms.stations and the stations read model decided on.
	commands *commandlog.Log
	metrics  *commandlog.Metrics
	log      *slog.Logger
}

// New validates cfg and connects a producer (acks from all in-sync
// replicas, idempotent). Close it with Close.
func New(cfg Config) (*Commands, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	cl, err := commandlog.New(commandlog.Config{
		Kafka: cfg.Kafka, Pool: cfg.Pool, Topic: event.TopicStations, Projector: stations.ProjectionName,
		Role: "station-commands", Subject: "station", ReadModel: "stations",
		DecideTimeout: cfg.Timeout, ProduceTimeout: cfg.ProduceTimeout, Unavailable: ErrUnavailable,
	})
	if err != nil {
		return nil, fmt.Errorf("stationcmd: %w", err)
	}
	return &Commands{cfg: cfg, commands: cl, metrics: m, log: cfg.Logger.With("component", "station-commands")}, nil
}

// Close closes the Kafka client; call it once no command is running.
func (c *Commands) Close() { c.commands.Close() }

// Result is what a command did.
type Result struct {
	StationID string
	// EventID is the id of the event the command appended.
	EventID string
	// Version is the station's version once the event is applied.
	Version int64
	// Created: the station did not exist before.
	Created bool
	// Accepted: the event is in tms.stations, but the read model did not
	// show it within the timeout; it will.
	Accepted bool
	// Station is the station as the read model stores it once it shows
	// the event; nil for deletions and when Accepted.
	Station *stations.Station
}

// Parse reads a station definition from a request body under the
// commands' Rules (see station.Rules.Parse).
func (c *Commands) Parse(body []byte) (*station.Station, error) { return c.cfg.Rules.Parse(body) }

// admit checks what a station costs, before anything else of a create or
// put: a *station.ValidationError for a geometry of more positions than
// the Rules allow, or one the geofence could not index (on radius_m for a
// circle, whose radius is what makes it too large; on geometry for
// polygons).
func (c *Commands) admit(s *station.Station) error {
	if err := c.cfg.Rules.CheckPoints(s); err != nil {
		return err
	}
	if c.cfg.Indexer == nil {
		return nil
	}
	err := c.cfg.Indexer.Indexable(s.Shape())
	if err == nil {
		return nil
	}
	field := "geometry"
	if s.Geometry().Type() == station.GeometryPoint {
		field = "radius_m"
	}
	return &station.ValidationError{Fields: []station.FieldError{{
		Field:  field,
		Detail: fmt.Sprintf("the geofence cannot index this shape (%v); make it smaller", err),
	}}}
}

// Create creates s, giving it an id when it has none. It fails with
// station.ErrExists when a station with its id exists, and with a
// *station.ValidationError when the station costs more than the Rules or
// the Indexer allow.
func (c *Commands) Create(ctx context.Context, s *station.Station) (Result, error) {
	if s.ID() == "" {
		var err error
		if s, err = s.WithID(c.cfg.NewID()); err != nil {
			return Result{}, fmt.Errorf("stationcmd: a new id: %w", err)
		}
	}
	return c.execute(ctx, "create", s, func(at time.Time) station.Command {
		return station.CreateStation{Station: s, Source: c.cfg.Source, At: at}
	}, s.ID())
}

// Put creates or replaces s (which must have an id) if cond holds, else
// fails with station.ErrPreconditionFailed; as Create, it refuses a
// station that costs too much.
func (c *Commands) Put(ctx context.Context, s *station.Station, cond station.Condition) (Result, error) {
	return c.execute(ctx, "put", s, func(at time.Time) station.Command {
		return station.PutStation{Station: s, Condition: cond, Source: c.cfg.Source, At: at}
	}, s.ID())
}

// Delete deletes station id if it exists (else station.ErrNotFound) and
// cond holds (else station.ErrPreconditionFailed).
func (c *Commands) Delete(ctx context.Context, id string, cond station.Condition) (Result, error) {
	return c.execute(ctx, "delete", nil, func(at time.Time) station.Command {
		return station.DeleteStation{ID: id, Condition: cond, Source: c.cfg.Source, At: at}
	}, id)
}

// execute runs one command: the upserted station s (nil for a deletion)
// admitted, then decided and produced under the station's lock, then
// waited for. The command's time is taken once the lock is held, so that
// the times of one station's events follow their order.
func (c *Commands) execute(ctx context.Context, kind string, s *station.Station, command func(at time.Time) station.Command, id string) (res Result, err error) {
	start := time.Now()
	defer func() { c.observe(kind, res, err, time.Since(start)) }()
	if s != nil {
		if err := c.admit(s); err != nil {
			return Result{}, err
		}
	}

	d, err := c.decideAndProduce(ctx, command, id)
	if err != nil {
		return Result{}, err
	}
	res = Result{StationID: id, EventID: d.Event.ID, Version: d.Version, Created: d.Created}
	st, shown, err := c.awaitVersion(ctx, id, d)
	switch {
	case err != nil && ctx.Err() != nil:
		return Result{}, err // the client went away; the event is in
	case err != nil:
		// The event is appended: say so rather than fail the command.
		c.log.WarnContext(ctx, "waiting for the stations read model failed", "station", id, "version", d.Version, "err", err)
		res.Accepted = true
	case !shown:
		res.Accepted = true
	default:
		res.Station = st
	}
	return res, nil
}

// decideAndProduce decides the command against the station's version and
// produces its event, holding the station's lock, on a read model that
// has caught up with the topic (see commandlog.Log.Decide). The command's
// time is taken under the lock.
func (c *Commands) decideAndProduce(ctx context.Context, command func(at time.Time) station.Command, id string) (d station.Decision, err error) {
	err = c.commands.Decide(ctx, id, func(lockCtx context.Context, tx pgx.Tx) error {
		cur, err := stations.Current(lockCtx, tx, id)
		if err != nil {
			return c.commands.Unavailable(lockCtx, ctx, "reading the station's version", err)
		}
		// Postgres keeps microseconds: a command's time is truncated to
		// them, so that the read model shows exactly the event's time.
		if d, err = command(c.cfg.Now().UTC().Truncate(time.Microsecond)).Decide(cur); err != nil {
			return err
		}
		return c.commands.Append(ctx, id, d.Event)
	})
	return d, err
}

// awaitVersion waits up to the timeout for the read model to show the
// decided version and returns the station as stored (nil for a
// deletion). shown is false when the timeout passed first.
func (c *Commands) awaitVersion(ctx context.Context, id string, d station.Decision) (*stations.Station, bool, error) {
	store := stations.NewStore(c.cfg.Pool)
	var cur station.Current
	shown, err := commandlog.Await(ctx, c.cfg.Timeout, 10*time.Millisecond, func(wctx context.Context) (bool, error) {
		var err error
		cur, err = store.Current(wctx, id)
		return cur.Version >= d.Version, err
	})
	switch {
	case !shown:
		return nil, false, err
	case d.Event.Type == event.TypeStationDeleted || cur.Deleted:
		// A deletion; or a later command deleted the station already, and
		// there is nothing to show of this version.
		return nil, true, nil
	}
	st, err := store.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return &st, true, nil
}
