package httpapi

import (
	"context"
	"time"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/rebuild"
	"github.com/tmsfleet/tms/projections/replays"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// VehicleStore is what the API reads vehicles through; *vehicles.Store
// implements it. Implementations must be safe for concurrent use: every
// request calls them from its own goroutine.
type VehicleStore interface {
	// List returns the vehicles q selects, ordered by plate.
	List(ctx context.Context, q vehicles.ListQuery) ([]vehicles.Vehicle, error)
	// Get returns one vehicle, or an error wrapping vehicles.ErrNotFound
	// when tms has never received a fix from it.
	Get(ctx context.Context, plate string) (vehicles.Vehicle, error)
	// Track returns the fixes q selects, in fix-time order. It returns no
	// error for a vehicle it does not know: the caller tells an unknown
	// vehicle from an empty window with Get.
	Track(ctx context.Context, q vehicles.TrackQuery) ([]vehicles.Fix, error)
	// Around returns the vehicle's last fix before from and its first
	// after to, each nil when there is none: what a distance over
	// [from, to] is interpolated at its ends with.
	Around(ctx context.Context, plate string, from, to time.Time) (before, after *vehicles.Fix, err error)
	// ScanTrack calls fn with each of plate's fixes in [from, to), in
	// fix-time order, as they are read, however many they are; fn's error
	// stops it and is returned as it is.
	ScanTrack(ctx context.Context, plate string, from, to time.Time, fn func(vehicles.Sample) error) error
	// FixesAt returns plate's fixes at times, which lie in [from, to), in
	// fix-time order.
	FixesAt(ctx context.Context, plate string, from, to time.Time, times []time.Time) ([]vehicles.Fix, error)
	// HistoryFrom returns when the positions history starts, retention
	// having dropped what was before; ok false while it has dropped
	// nothing.
	HistoryFrom(ctx context.Context) (from time.Time, ok bool, err error)
	// Export counts the fixes q selects and, when they are at most max,
	// streams them to fn in one snapshot, by plate and fix time;
	// otherwise it streams nothing and returns a count above max.
	Export(ctx context.Context, q vehicles.ExportQuery, max int64, fn func(plate string, f *vehicles.Fix) error) (int64, error)
}

// StationStore is what the API reads stations through; *stations.Store
// implements it. It must be safe for concurrent use.
type StationStore interface {
	// List returns the live stations q selects, ordered by id.
	List(ctx context.Context, q stations.ListQuery) ([]stations.Station, error)
	// Get returns a live station, or an error wrapping station.ErrNotFound
	// for one that never existed or is deleted.
	Get(ctx context.Context, id string) (stations.Station, error)
}

// VisitStore is what the API reads visits through; *visits.Store
// implements it. It must be safe for concurrent use.
type VisitStore interface {
	// List returns the visits q selects, newest entry first.
	List(ctx context.Context, q visits.Query) ([]visits.Visit, error)
	// OpenByVehicles returns the open visits of the vehicles with plates,
	// in one query, ordered by vehicle and then by entry.
	OpenByVehicles(ctx context.Context, plates []string) ([]visits.Visit, error)
	// OpenAtStation returns up to limit open visits of a station, earliest
	// entry first.
	OpenAtStation(ctx context.Context, stationID string, limit int) ([]visits.Visit, error)
	// Boundaries returns up to limit times in [from, to) at which vehicle
	// entered or left a station, in time order.
	Boundaries(ctx context.Context, vehicle string, from, to time.Time, limit int) ([]time.Time, error)
	// Export counts the visits q selects and, when they are at most max,
	// streams them to fn in one snapshot, in entry order; otherwise it
	// streams nothing and returns a count above max.
	Export(ctx context.Context, q visits.ExportQuery, max int64, fn func(v *visits.Visit, at *visits.StationShape) error) (int64, error)
}

// ReplayStore is what the API reads replay runs through: the results of
// `tms replay geofence`, derived history kept apart from the live visits.
// *replays.Store implements it. It must be safe for concurrent use.
type ReplayStore interface {
	// List returns up to limit runs, newest start first, of one station
	// when stationID is not empty.
	List(ctx context.Context, stationID string, limit int) ([]replays.Run, error)
	// Get returns one run, or replays.ErrNotFound. id is a UUID in its
	// canonical form.
	Get(ctx context.Context, id string) (replays.Run, error)
	// Visits returns up to limit visits of run id in entry order (ties
	// by visit id), after the visit entered at afterTime with id afterID
	// when afterTime is not nil.
	Visits(ctx context.Context, id string, afterTime *time.Time, afterID string, limit int) ([]replays.Visit, error)
}

// RebuildStore is what the API reads read-model rebuilds through (`tms
// rebuild`, GET /rebuilds); *rebuild.Store implements it. It must be safe
// for concurrent use.
type RebuildStore interface {
	// List returns up to limit rebuilds, newest first, with their read
	// models' progress; none where no rebuild ever ran.
	List(ctx context.Context, limit int) ([]rebuild.Rebuild, error)
}

// StationCommands executes the station writes; *stationcmd.Commands
// implements it. It must be safe for concurrent use, and serialise the
// commands of one station across every API instance. Each method answers
// once the read model shows the change (Result.Station set, for upserts),
// or with Result.Accepted once it is appended but not yet shown. Errors
// wrap station.ErrExists, station.ErrNotFound,
// station.ErrPreconditionFailed or stationcmd.ErrUnavailable when the
// command did not apply.
type StationCommands interface {
	// Parse reads a station definition from a request body under the
	// installation's rules (its largest number of positions).
	Parse(body []byte) (*station.Station, error)
	// Create creates s, giving it an id when it has none.
	Create(ctx context.Context, s *station.Station) (stationcmd.Result, error)
	// Put creates or replaces s (which has an id) if cond holds.
	Put(ctx context.Context, s *station.Station, cond station.Condition) (stationcmd.Result, error)
	// Delete deletes station id if it exists and cond holds.
	Delete(ctx context.Context, id string, cond station.Condition) (stationcmd.Result, error)
}

// JobStore is what the API reads jobs through; *jobs.Store implements it.
// It must be safe for concurrent use.
type JobStore interface {
	// List returns the jobs q selects, newest creation first.
	List(ctx context.Context, q jobs.Query) ([]jobs.Job, error)
	// Get returns job id (a UUID in its canonical form), or an error
	// wrapping job.ErrNotFound.
	Get(ctx context.Context, id string) (jobs.Job, error)
	// Export counts the jobs q selects and, when they are at most max,
	// streams them to fn in one snapshot, in creation order; otherwise it
	// streams nothing and returns a count above max.
	Export(ctx context.Context, q jobs.ExportQuery, max int64, fn func(j *jobs.Job) error) (int64, error)
}

// JobCommands executes the job writes; *jobcmd.Commands implements it. It
// must be safe for concurrent use, and serialise the commands of one job
// across every API instance. Each method answers once the read model shows
// what the command did (Result.Job set), or with Result.Accepted once it
// is appended but not yet shown. Errors wrap a *job.ValidationError,
// job.ErrNotFound, job.ErrFinished, job.ErrConflict or
// jobcmd.ErrUnavailable when the command did not apply.
type JobCommands interface {
	// Create creates the job r asks for, or answers the job its external
	// reference names when r repeats it (Result.Created false).
	Create(ctx context.Context, r job.CreateRequest) (jobcmd.Result, error)
	// Cancel cancels job id for reason.
	Cancel(ctx context.Context, id, reason string) (jobcmd.Result, error)
}

// TripStore is what the API reads trips and stops through; *trips.Store
// implements it. It must be safe for concurrent use.
type TripStore interface {
	// Trips returns the trips q selects, in start order.
	Trips(ctx context.Context, q trips.Query) ([]trips.Trip, error)
	// FleetTrips returns the trips of every vehicle (or of q.Plates) q
	// selects, in (start, id) order.
	FleetTrips(ctx context.Context, q trips.FleetQuery) ([]trips.Trip, error)
	// Trip returns trip id (a UUID in its canonical form), or an error
	// wrapping trips.ErrNotFound.
	Trip(ctx context.Context, id string) (trips.Trip, error)
	// Stops returns the stops q selects, in start order.
	Stops(ctx context.Context, q trips.Query) ([]trips.Stop, error)
	// Export counts the trips q selects and, when they are at most max,
	// calls fn with each in start order in one snapshot (as
	// VehicleStore.Export).
	Export(ctx context.Context, q trips.ExportQuery, max int64, fn func(t *trips.Trip) error) (int64, error)
}

// G7EventStore is what the API reads G7's stop, idle and EMS events
// through; *g7events.Store implements it. It must be safe for concurrent
// use.
type G7EventStore interface {
	// List returns the events q selects, in (start, id) order.
	List(ctx context.Context, q g7events.Query) ([]g7events.Event, error)
}
