// Package job is a vehicle's job: a planned trip over an ordered list of
// stops (load here, check there, unload at one or more places), advanced by
// the vehicle entering and leaving its stops' stations, and settled into a
// completion billing can charge from alone: per stop its arrival,
// departure and dwell, the distance driven empty and loaded with the GPS
// noise removed (and what was removed), the straight-line and driven
// distance of each leg, the cargo and the billing system's reference.
//
// Everything here is decided from inputs and their times, never from the
// clock: a job's commands (created and cancelled through the API, dated
// when the API accepted them), the geofence's entries and exits (dated at
// the fixes), and the vehicle's fixes. A Vehicle holds one vehicle's jobs
// and turns those inputs into job events; the contract of those events,
// and every decision about what a visit, a silence or a late fix does to
// a job, is docs/jobs.md.
package job
