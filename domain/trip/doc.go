// Package trip cuts a vehicle's fixes into trips and the stops between
// them, for analysts: when each trip began and ended, where, how far it
// went (with the GPS noise taken out as for jobs, by domain/track), how
// fast, how long it moved and how long it stood in traffic; and for each
// stop where and how long the vehicle stood.
//
// # The rules
//
// A Vehicle reads one vehicle's fixes in fix-time order and keeps a small
// state (a few fixes and running totals, never the fixes themselves):
//
//   - A fix is judged first by the noise filter (track.Filter): a jump is
//     ignored but for its time; drift and kept fixes are where the vehicle
//     was. Only kept fixes add distance.
//   - Standing still means staying within Rules.RadiusM of where the
//     vehicle stood (its anchor). It moves when Rules.MoveFixes fixes in a
//     row are farther than that: one stray fix is not a departure. Its
//     trip then starts at the last fix at which it stood (reported speed
//     at most the filter's parked speed), so the trip holds the whole
//     pull-away, not only what lies past the radius.
//   - A trip ends when the vehicle has stayed within the radius of one
//     place for at least Rules.Parking. It ends at the first fix of that
//     stay at which the vehicle stood (or the stay's first fix, if it never
//     reported standing), so that the trip holds the whole approach.
//   - A silence longer than Rules.Gap ends the trip in progress at its
//     last fix (or where the vehicle had just stopped). If the vehicle
//     reappears within the radius of where it stood, its stop goes on
//     across the silence (a parked truck with its ignition off); otherwise
//     the stop ends at its last fix and the vehicle starts afresh where it
//     reappeared. Nothing is made of the silence itself.
//   - The vehicle's first fix, and its first after such a silence, start a
//     segment flagged partial: it may have begun before tms heard of it.
//
// Stops are the time between two trips, at the place the first one
// ended. Every number is a function of the fixes alone, in fix-time order,
// never of the clock or of when the fixes arrived: the same fixes give the
// same trips, however they are batched.
//
// # Late fixes
//
// A Vehicle takes fixes only in fix-time order. A fix older than the
// newest one is applied by going back to a snapshot of the state taken
// before it (MarshalBinary and UnmarshalBinary are the one way to store
// and rebuild a Vehicle) and reading the fixes from there again, the late one
// in its place: what comes out is exactly what the fixes in order would
// have made. OpenSince says which segments that reading makes again. The
// projection that does so keeps the fixes and the snapshots, and numbers
// the revisions (projections/trips).
package trip
