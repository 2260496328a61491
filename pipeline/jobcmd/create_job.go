package jobcmd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Create validates r against the read models and appends its create
// command; see the package doc. Errors: a *job.ValidationError naming
// every bad field, job.ErrConflict (the external reference names a job of
// other content), ErrUnavailable.
func (c *Commands) Create(ctx context.Context, r job.CreateRequest) (res Result, err error) {
	start := time.Now()
	defer func() { c.observe("create", res, err, time.Since(start)) }()
	facts, err := c.facts(ctx, r)
	if err != nil {
		return Result{}, err
	}
	ref := strings.TrimSpace(r.ExternalRef)
	if ref == "" || len(ref) > job.MaxExternalRefBytes {
		cmd, err := job.NewCreate(r, facts, c.cfg.Now(), c.cfg.NewID())
		if err != nil {
			return Result{}, err
		}
		return c.append(ctx, cmd)
	}

	id := job.IDFor(ref)
	repeat := false
	var cmd job.Create
	err = c.commands.Decide(ctx, id, func(_ context.Context, q pgx.Tx) error {
		// The command's time is taken under the lock, once the read
		// model has caught up: it is appended at once after.
		var invalid error
		cmd, invalid = job.NewCreate(r, facts, c.cfg.Now(), "")
		prev, err := jobs.Request(ctx, q, id)
		switch {
		case errors.Is(err, jobs.ErrNotFound):
		case err != nil:
			return err
		case sameRequest(prev, r):
			repeat = true
			return nil
		case invalid != nil:
			return invalid
		default:
			return fmt.Errorf("%w: external_ref %q names job %s, of vehicle %s, with other stops or cargo; "+
				"repeat it unchanged, or use another reference", job.ErrConflict, ref, id, prev.Vehicle)
		}
		if invalid != nil {
			return invalid
		}
		return c.produceCreate(ctx, cmd)
	})
	if err != nil {
		return Result{}, err
	}
	res = Result{JobID: id, Created: !repeat}
	if !repeat {
		res.EventID = eventID(cmd)
	}
	return c.show(ctx, res, inReadModel)
}

// append appends a create command that needs no decision (a job without
// an external reference has an id of its own) and waits for the job.
func (c *Commands) append(ctx context.Context, cmd job.Create) (Result, error) {
	if err := c.produceCreate(ctx, cmd); err != nil {
		return Result{}, err
	}
	return c.show(ctx, Result{JobID: cmd.JobID, EventID: eventID(cmd), Created: true}, inReadModel)
}

func (c *Commands) produceCreate(ctx context.Context, cmd job.Create) error {
	e, err := cmd.Event()
	if err != nil {
		return fmt.Errorf("jobcmd: %w", err)
	}
	return c.commands.Append(ctx, cmd.Vehicle, e)
}

// inReadModel: a create is shown once the read model holds its job.
func inReadModel(*jobs.Job) (bool, error) { return true, nil }

func eventID(cmd job.Create) string {
	e, _ := cmd.Event() // encoded once already
	return e.ID
}

// sameRequest reports whether r asks for the job prev was created as: the
// same vehicle, cargo and stops (stations, kinds and planned arrivals).
func sameRequest(prev job.Create, r job.CreateRequest) bool {
	plate, rej := position.NormalizePlate("vehicle", r.Vehicle)
	if rej != nil || plate != prev.Vehicle || r.Cargo != prev.Cargo || len(r.Stops) != len(prev.Stops) {
		return false
	}
	for i, s := range r.Stops {
		p := prev.Stops[i]
		if s.StationID != p.StationID || s.Kind != p.Kind || (s.PlannedArrival == nil) != (p.PlannedArrival == nil) {
			return false
		}
		if s.PlannedArrival != nil && !s.PlannedArrival.Truncate(time.Millisecond).Equal(*p.PlannedArrival) {
			return false
		}
	}
	return true
}

// facts reads what a create is validated against: the live stations its
// stops name, and whether its vehicle has reported. A request of more
// stops than a job may have is refused by job.NewCreate without them.
func (c *Commands) facts(ctx context.Context, r job.CreateRequest) (job.Facts, error) {
	facts := job.Facts{Stations: map[string]job.Station{}}
	if len(r.Stops) <= job.MaxStops {
		var ids []string
		for _, s := range r.Stops {
			if station.ValidateID("station_id", s.StationID) == nil && !slices.Contains(ids, s.StationID) {
				ids = append(ids, s.StationID)
			}
		}
		list, err := stations.NewStore(c.cfg.Pool).GetMany(ctx, ids)
		if err != nil {
			return facts, fmt.Errorf("jobcmd: %w", err)
		}
		for _, s := range list {
			p, err := referencePoint(s)
			if err != nil {
				return facts, fmt.Errorf("jobcmd: station %s: %w", s.ID, err)
			}
			facts.Stations[s.ID] = job.Station{ID: s.ID, Name: s.Name, Type: s.Type, Point: p}
		}
	}
	if plate, rej := position.NormalizePlate("vehicle", r.Vehicle); rej == nil {
		_, err := vehicles.NewStore(c.cfg.Pool).Get(ctx, plate)
		switch {
		case err == nil:
			facts.VehicleKnown = true
		case !errors.Is(err, vehicles.ErrNotFound):
			return facts, fmt.Errorf("jobcmd: %w", err)
		}
	}
	return facts, nil
}

// referencePoint is where a job measures a station's legs from: a
// circle's centre, or the first position of an area's (first) outer ring,
// rounded to 7 decimals (about 1 cm), as job events carry coordinates.
func referencePoint(s stations.Station) (job.Point, error) {
	var g station.Geometry
	if err := g.UnmarshalJSON(s.Geometry); err != nil {
		return job.Point{}, err
	}
	p := g.Point()
	if g.Type() != station.GeometryPoint {
		p = g.Polygons()[0][0][0]
	}
	round := func(v float64) float64 { return math.Round(v*1e7) / 1e7 }
	return job.Point{Lat: round(p.Lat), Lng: round(p.Lng)}, nil
}
