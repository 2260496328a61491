// Package ws is tms's live WebSocket endpoint (GET /api/v1/ws) for
// dashboards: a hub (melody) that takes each client's subscription,
// answers it with a snapshot of the latest positions, then pushes the
// matching events as they happen, and a Feed that reads the events from
// Kafka and publishes them to the hub.
//
// # Protocol
//
// All messages are JSON text frames. The connection is authenticated
// before it reaches the hub (a bearer token in the Authorization header,
// or, for browsers, which cannot set it, the access_token query
// parameter); an unauthorised upgrade is refused with 401.
//
// The client sends one kind of message, subscribe:
//
//	{"subscribe": {"vehicles": ["沪A12345"],
//	               "bbox": [121.0, 30.9, 121.9, 31.5],
//	               "types": ["tms.position.reported.v1", "tms.vehicle.entered_station.v1"],
//	               "stations": ["S001"]}}
//
// Every filter is optional; an absent (or null) one does not filter, so
// {"subscribe": {}} receives everything. An empty list is refused rather
// than guessed at. The filters given must all match:
//
//   - vehicles: the event's subject is one of these plates. Plates are
//     normalised as ingest normalises them (trimmed, Latin letters
//     upper-cased), so "沪a12345" selects 沪A12345.
//   - bbox: [minLng, minLat, maxLng, maxLat], WGS84 degrees, edges
//     included; minLng > maxLng selects a box across the antimeridian
//     ([170, -50, -170, -30] spans 170°E to 170°W). It is tested on the
//     event's data.lat and data.lng. An event whose data has neither (a
//     job event, a station deletion) passes the bbox; one with only one of
//     them, or non-numeric ones, cannot be placed and does not.
//   - types: the event's CloudEvents type is one of these. Names are
//     checked for their shape (tms.position.reported.v1), not against a
//     list, so types added later can be subscribed to.
//   - stations: the event is about one of these stations: its
//     data.station_id is one of them (geofence events), or it is a
//     tms.station.* event whose subject is. Positions are about no station
//     and do not pass it.
//
// Until its first subscribe a connection receives nothing. A new
// subscribe replaces the one in force. Every frame the server sends has a
// type and a seq:
//
//	{"type":"subscribed","seq":1,"filter":{"vehicles":["沪A12345"],"bbox":[121,30.9,121.9,31.5]}}
//	{"type":"snapshot","seq":2,"vehicles":[{"plate":"沪A12345","lat":31.2,"lng":121.5,
//	    "speed_kmh":42.5,"course_deg":90,"fix_time":"...","received_at":"...","flags":[]}]}
//	{"type":"event","seq":3,"event":{"specversion":"1.0","id":"...","type":"tms.position.reported.v1",...}}
//	{"type":"error","seq":4,"field":"bbox","detail":"latitudes must be within [-90, 90]"}
//
// seq starts at 1 and grows by exactly 1 per frame on the connection, so a
// client can check that it has every frame, in order.
//
// subscribed echoes the filter as normalised (absent filters omitted).
// Everything after it is for the new filter: events queued for the old
// one, and an unsent snapshot of it, are dropped.
//
// snapshot follows when the filter admits position events (types absent
// or listing tms.position.reported.v1, and no stations filter): the latest
// position, by fix time, of every vehicle the filter selects, from the
// vehicles read model. course_deg is absent when the vehicle did not
// report one. If the snapshot cannot be loaded, an error frame without a
// field takes its place; live events follow regardless, and subscribing
// again retries.
//
// event frames carry the CloudEvents envelope exactly as it is on the
// topic (see the event schemas). Events that arrive while the snapshot
// loads are held and follow it. The snapshot and the live stream can
// overlap: a vehicle can appear in the snapshot and again in an event, in
// either order of fix time. Clients keep, per vehicle, the position with
// the latest fix_time (a position event's time and data.fix_time).
//
// error refuses a message: a subscribe that is not valid (field names
// the filter at fault; the subscription in force stays as it was), an
// unknown message, or a binary frame. The connection stays open.
//
// # Slow clients
//
// A client that reads slower than events arrive never slows the hub or
// other clients, and its backlog is bounded:
//
//   - Positions coalesce per vehicle: while a client is behind, a newer
//     position of a vehicle replaces its pending one, in its place in
//     line; the client receives each vehicle's latest position rather
//     than every one (tms_ws_frames_coalesced_total counts those skipped).
//     Since seq is given when a frame is sent, there is no gap to see.
//   - Other events (station entered and exited, alerts) are each
//     delivered, in order. At most MaxPending of them (1024 by default,
//     with any unsent replies) wait for a client; one more closes the
//     connection with status 1013 (try again later), reason "too slow".
//     The client should reconnect and subscribe again: its snapshot
//     resynchronises it.
//   - A connection that does not accept a frame within WriteTimeout, or
//     answers no ping within PongTimeout, is dropped without a close
//     frame.
//
// Other close codes: 1001 (going away) when the server shuts down, 1009
// when a client message exceeds MaxMessageBytes. Clients should reconnect
// with backoff after any close, and subscribe again.
//
// # Metrics
//
// tms_ws_clients, tms_ws_frames_sent_total{type},
// tms_ws_frames_coalesced_total, tms_ws_frames_dropped_total,
// tms_ws_clients_closed_slow_total, tms_ws_events_published_total,
// tms_ws_push_latency_seconds (from tms receiving the event: a position's
// data.received_at, its MQTT receipt, else the Kafka record's timestamp,
// to its frame being written), and tms_ws_feed_records_skipped_total.
package ws
