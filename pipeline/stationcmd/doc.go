// Package stationcmd executes the station catalogue's commands (create,
// put, delete): it is the writer of tms.stations, as ingest is the writer
// of tms.positions, and the API's POST, PUT and DELETE on stations call
// it.
//
// A command is decided by domain/station against the station's current
// version and appended to tms.stations; the answer waits until the
// stations read model shows it (read-your-writes), or says the event was
// accepted when that takes longer than Config.Timeout.
//
// # Serialising commands
//
// Two commands on one station must not both claim its next version. Each
// command therefore decides and produces under a Postgres advisory lock on
// the station id (transaction-scoped: a crashed instance's lock goes with
// its connection), which serialises the commands of one station across
// every API instance. The version is read from the stations read model,
// which may lag the topic: under the lock, the command checks that the
// projection has applied every record the topic holds (its stored offsets
// reach the topic's last stable offsets: tms.stations is written without
// transactions, so these are its end offsets). Any earlier command on the
// station was produced before its lock was released, so it is below those
// offsets, and its version is seen. pipeline/commandlog holds this
// machinery, which the job commands share.
//
// Waiting happens without the lock and without a connection: a command
// waits (polling) until the read model has caught up, then tries the lock
// (pg_try_advisory_xact_lock); when the lock is taken, or the topic has
// moved on meanwhile, it lets go and waits again. Waiters that held
// connections could take every connection of a pool the projector they
// wait for shares. A command that cannot proceed within Config.Timeout
// (the projector is down, or the station is contended) fails with
// ErrUnavailable, having produced nothing.
//
// The lock is released once the event is produced; the wait for the read
// model to show it happens outside the lock.
//
// # What a station may cost
//
// A create or put is refused with a *station.ValidationError, before it
// takes a lock or touches Kafka, when its station has more positions than
// Config.Rules allow or when Config.Indexer (the geofence's H3 index
// configuration) says the geofence could not index its shape. The station
// is validated here, once: readers of tms.stations trust what the topic
// holds (see station.Geometry.UnmarshalJSON), so a station that was
// accepted is never refused or skipped later, as long as the geofence runs
// with the same configuration.
//
// # Event time
//
// A command's time comes from Config.Now when the command is handled: it
// is the envelope time of its event, from when the station's new form
// applies to fixes.
package stationcmd
