// Package trips is the trips read model: every vehicle's trips and the
// stops between them, cut from its fixes on tms.positions by domain/trip,
// whether or not the vehicle has jobs. It holds the projection that builds
// the trips and stops tables and the queries the API reads them with.
//
// # The projection
//
// A vehicle's fixes arrive in offset order, mostly in fix-time order. The
// projector is stateless between transactions: what domain/trip has made
// of a vehicle's fixes so far (a few fixes and running totals) is a row of
// trip_vehicles, read at the start of a batch and written at its end, in
// the transaction that commits the batch's offsets. A fix in order goes
// through that state and closes the segments it closes; the segment in
// progress is a row too (open), written again with each batch.
//
// A late fix (older than the vehicle's newest) cannot go through the
// state, which is past it. The projection keeps, per vehicle, the fixes of
// the last TMS_TRIPS_LATE_HORIZON (trip_fixes) and a snapshot of the
// state every 15 minutes of fix time (trip_snapshots, each the state
// before its fix). A late fix within the horizon takes the vehicle back to
// the last snapshot before it and reads the kept fixes from there again,
// the late one in its place: the segments from the one that was open at
// the snapshot on are made again (same start, same id: updated in place,
// never copied). Each that the late fix changed takes the next revision;
// one it made new (a split, a start moved) takes one more than the
// highest of those it overlaps, at least 2. A fix later than the horizon
// is counted
// (tms_trips_fixes_total{outcome="beyond_horizon"}) and changes nothing:
// its trips are settled. The positions read model is not read:
// it is another consumer group's, which may be behind or ahead of this one,
// and what this projection makes must depend on its own records alone.
//
// Everything written is a function of each vehicle's records in offset
// order (which fixes arrived late is part of that), never of how they are
// batched or when they are applied, so a rebuild from the topic makes the
// same rows, and a record applied again after a crash finds no trace of
// the first attempt (its transaction rolled back with the offsets).
//
// # The queries
//
// Stations and jobs are joined when the rows are read, not stored: the
// station at each end of a trip (and of a stop) is the station whose visit
// (visits read model) was in progress at that moment, hazard zones aside;
// the job is the one whose window (its start to its completion or
// cancellation) holds the trip's middle (jobs read model). A visit or a
// job that reaches its read model after the trip was made, or changes
// later, so shows at once and never goes stale in a trip row.
package trips
