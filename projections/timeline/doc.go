// Package timeline reads a vehicle's history as one event-time timeline:
// its positions, its station entries and exits (and the hazard alerts of
// its entries) and its jobs' events, merged in the order they happened.
// It is what a WebSocket replay (adapters/ws) streams.
//
// # Why from the read models
//
// The events are on the topics, but a topic cannot be read by vehicle and
// time: a partition holds many vehicles, in the order their events were
// decided. The read models can: positions by (plate, fix_time), visits by
// (vehicle, entered_at) and (vehicle, exited_at), jobs by (vehicle,
// created_at). A Reader pages each of the four with a keyset query of at
// most Rows rows, one query at a time, and only when the merge needs the
// next row of that stream: a replay holds at most four pages, however long
// its range, and reads as fast as it is consumed, never ahead.
//
// # The events, rebuilt
//
// Each item is the event as it was on its topic, rebuilt from its row with
// the same type, id, source, subject and time, so that a client handles a
// replayed event as it handles a live one and can match the two by id:
//
//   - tms.position.reported.v1: exactly as ingest produced it (the
//     positions table keeps every field of the event).
//   - tms.vehicle.entered_station.v1 and exited_station.v1, and the
//     tms.alert.raised.v1 that follows an entry into a hazard station:
//     as the geofence produced them, except lat and lng. The visits table
//     keeps when a visit began and ended, not where the vehicle was: the
//     place is interpolated, by time, between the fixes just before and
//     just after the event (the fixes before and after the range included).
//     For an entry or exit decided at a fix, that is the fix's own place;
//     for one the geofence interpolated between sparse fixes, it is the
//     point at that time on the straight line between them. With a fix on
//     one side only, it is that fix's place; with none (the positions
//     were dropped by retention, say), lat and lng are left out.
//     station_version is the visit's.
//   - tms.job.started.v1: exactly. tms.job.created.v1: with the stops as
//     planned (pending) and status active when the job started as it was
//     created, queued otherwise. tms.job.stop_arrived.v1 and
//     stop_departed.v1: the stop as it stands in the read model (an
//     arrival without the departure's time and dwell), its flags those of
//     both, and "at" interpolated as for the station events (the
//     station's reference point when there is no fix).
//     tms.job.completed.v1, or tms.job.amended.v1 with its revision: the
//     latest revision only (the read model keeps no other), at its
//     completion time. tms.job.cancelled.v1: with was_status active when
//     the job had started, queued otherwise.
//
// # Order
//
// Items come by event time. At equal times: the position first (the fix
// that caused what follows), then exits, then entries (each followed by
// its alert), then job events: created, started, stop departures, stop
// arrivals, completion, cancellation (a vehicle leaves one station before
// it reaches the next; a job completes at its last departure). Ties within
// a kind go by visit id, or by job id and stop index.
package timeline
