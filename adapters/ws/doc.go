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
// parameter); an unauthorised upgrade is refused with 401. Before it
// upgrades, the hub also refuses, each with a problem document:
//
//   - 403: a browser page from another origin. A request without Origin
//     (not a browser) and one whose Origin's host is the request's Host
//     are allowed, and so are the origins of Config.AllowedOrigins
//     (TMS_WS_ALLOWED_ORIGINS; "*" allows all).
//   - 429: a token that already has MaxConnectionsPerCaller connections
//     open (32 by default). It may open another once one has closed.
//   - 503: a hub with MaxConnections open (256 by default), or shutting
//     down.
//
// Refusing before the upgrade, rather than upgrading and closing at once,
// costs the server no connection state, and tools and the browser's
// network panel show the status and the reason (a page's script sees
// only a failed connection, which it retries with backoff as any other).
//
// The client sends messages of two kinds: subscribe, for the live feed,
// and replay (with its controls: pause, resume, seek, speed and stop),
// for history (see Replay below). Each message is a JSON object with one
// member, the message's name. A subscribe:
//
//	{"subscribe": {"vehicles": ["沪A12345"],
//	               "bbox": [121.0, 30.9, 121.9, 31.5],
//	               "types": ["tms.position.reported.v1", "tms.vehicle.entered_station.v1"],
//	               "stations": ["S001"]}}
//
// Every filter is optional; an absent (or null) one does not filter, so
// {"subscribe": {}} receives everything. An empty list is refused rather
// than guessed at, and so is a list of more than MaxFilterEntries entries
// (1000 by default; duplicates count, and are dropped once accepted). The
// filters given must all match:
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
//     and do not pass it. Ids are checked as the stations API checks
//     them (1 to 64 letters, digits and _ . : -).
//
// Until its first subscribe a connection receives nothing. A new
// subscribe replaces the one in force. Every frame the server sends has a
// type and a seq:
//
//	{"type":"subscribed","seq":1,"filter":{"vehicles":["沪A12345"],"bbox":[121,30.9,121.9,31.5]},
//	    "counts":{"vehicles":1}}
//	{"type":"snapshot","seq":2,"vehicles":[{"plate":"沪A12345","lat":31.2,"lng":121.5,
//	    "speed_kmh":42.5,"course_deg":90,"fix_time":"...","received_at":"...","flags":[]}]}
//	{"type":"event","seq":3,"event":{"specversion":"1.0","id":"...","type":"tms.position.reported.v1",...}}
//	{"type":"error","seq":4,"field":"bbox","detail":"latitudes must be within [-90, 90]"}
//
// seq starts at 1 and grows by exactly 1 per frame on the connection, so a
// client can check that it has every frame, in order.
//
// subscribed summarises the filter as normalised, without ever repeating
// more than a few kilobytes, whatever the client sent: filter holds the
// bbox and each list of at most ten entries (normalised and
// deduplicated); a longer list is left out of filter, and counts gives
// the number of entries of every list given:
//
//	{"type":"subscribed","seq":5,"filter":{"types":["tms.position.reported.v1"]},
//	    "counts":{"vehicles":800,"types":1}}
//
// (here the client subscribed to 800 vehicles). Absent filters are absent
// from both. Everything after it is for the new filter: events queued for
// the old one, and an unsent snapshot of it, are dropped.
//
// snapshot follows when the filter admits position events (types absent
// or listing tms.position.reported.v1, and no stations filter): the latest
// position, by fix time, of every vehicle the filter selects, from the
// vehicles read model, in plate order. course_deg is absent when the
// vehicle did not report one. A snapshot has at most MaxSnapshotRows
// vehicles (10,000 by default) and at most half of MaxPendingBytes of
// JSON (2 MiB by default, about 10,000 vehicles). One that would be
// larger carries the first vehicles by plate and says so:
//
//	{"type":"snapshot","seq":2,"vehicles":[...],"truncated":true,
//	    "detail":"more than 10000 vehicles match the filter; these are the first 10000 by plate: ..."}
//
// A client that gets truncated should narrow its filter (vehicles, bbox);
// the live events are not cut, and the rest of the fleet's positions can
// be paged through GET /api/v1/vehicles. How many vehicles matched is not
// given: counting them would cost the database as much as loading them,
// which is what the limit is for. Snapshots are loaded at most
// MaxConcurrentSnapshots at once in all (8 by default) and
// MaxSnapshotsPerCaller at once per token (2); the others wait their turn,
// for up to SnapshotTimeout (10 s). If the snapshot cannot be loaded in
// that time, or at all, an error frame without a field takes its place
// (saying so when the token's own snapshots held all of its turns); live
// events follow regardless, and subscribing again retries.
//
// event frames carry the CloudEvents envelope exactly as it is on the
// topic (see the event schemas). The live feed carries every event of
// tms.positions, tms.geofence, tms.jobs (commands aside) and
// tms.g7events: G7's stop, idle and EMS reports,
// tms.g7.event.reported.v1, whose data.kind says which and whose
// data.lat and data.lng (where the event began) place it for a bbox.
// Subscribe to them alone with
//
//	{"subscribe": {"types": ["tms.g7.event.reported.v1"]}}
//
// Every report is pushed, repeats and the open report of an event later
// closed included: a client keeps one state per data.g7_event_id, the
// report of highest rank (docs/g7.md; the read model behind
// GET /api/v1/vehicles/{plate}/g7-events does so). Events that arrive while the snapshot
// loads are held and follow it. The snapshot and the live stream can
// overlap: a vehicle can appear in the snapshot and again in an event, in
// either order of fix time. Clients keep, per vehicle, the position with
// the latest fix_time (a position event's time and data.fix_time).
//
// error refuses a message: a subscribe that is not valid (field names
// the filter at fault, and index the entry of a list at fault; the
// subscription in force stays as it was), a replay or a control that is
// not (see Replay), an unknown message, or a binary frame. The connection stays open. An error frame never repeats the
// input whole: a detail quotes at most an excerpt of a value (32 bytes,
// quotes included, followed by "…" and the value's length when cut), an
// unknown message or filter is named by such an excerpt (field, when it
// is one, by its first 32 bytes), and an error frame is under 2.5 KiB:
//
//	{"type":"error","seq":6,"field":"vehicles","index":2,"detail":"vehicles[2]:
//	    \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"… (61440 bytes) is not a plate: letters, digits and '-', ..."}
//	{"type":"error","seq":7,"field":"stations",
//	    "detail":"has more than 1000 entries, the most a filter list may have: ..."}
//
// # Replay
//
// A replay streams one vehicle's history over [from, to): its positions,
// its station entries and exits (with the alert of an entry into a hazard
// station) and its jobs' events, merged on one event-time timeline and
// paced in proportion to real time (an event t seconds after the first
// comes t / speed seconds after it). The vehicle's history, a trip's or a
// job's:
//
//	{"replay": {"vehicle": "沪A12345", "from": "2025-03-01T08:00:00Z", "to": "2025-03-01T09:00:00Z", "speed": 60}}
//	{"replay": {"job": "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0a11", "speed": 10}}
//	{"replay": {"trip": "...", "speed": 10, "id": "my-replay"}}
//
// from and to are RFC 3339 times, required with vehicle and refused with a
// trip or a job, which are replayed over their own window (a job's from
// its start to its end, both included; one under way to now). speed is a
// number from 1 to MaxReplaySpeed (1000 by default); it defaults to 1.
// id, optional, names the replay (1 to 64 letters, digits and _ . : -);
// without one the hub names it r1, r2... The answer, before any of its
// events:
//
//	{"type":"replay_started","seq":7,"replay_id":"r1","vehicle":"沪A12345",
//	    "from":"2025-03-01T08:00:00Z","to":"2025-03-01T09:00:00Z","speed":60}
//
// (with "job" or "trip" when one was asked for), or an error frame naming
// the field at fault, and replay_id when the message gave one. Then one
// frame per event, each marked as replayed by its type, with the replay's
// id and its place in the replay (replay_seq: 1, 2, 3... without gaps):
//
//	{"type":"replay","seq":8,"replay_id":"r1","replay_seq":1,"event":{"specversion":"1.0",
//	    "id":"...","source":"/tms/ingest/g7","type":"tms.position.reported.v1","subject":"沪A12345",...}}
//
// The event is the CloudEvents envelope as it was on its topic, with the
// same id, rebuilt from the read models (projections/timeline says how;
// a station event's lat and lng are interpolated between the fixes around
// it). Events of equal time come in a fixed order: the position, exits,
// entries (each with its alert), then job events. The replay starts at
// its first event (a window that begins in a silence does not start with
// one); silences within it are kept, in proportion.
//
// The controls name the replay by its id, and are answered in the
// replay's own line of frames, after the events it sent before them:
//
//	{"pause": "r1"}   {"resume": "r1"}   {"stop": "r1"}
//	{"seek": {"id": "r1", "to": "2025-03-01T08:30:00Z"}}
//	{"speed": {"id": "r1", "speed": 300}}
//
//	{"type":"replay_state","seq":40,"replay_id":"r1","state":"paused","speed":60,"at":"2025-03-01T08:11:40Z"}
//
// state is playing or paused, at is where the replay is in event time. A
// paused replay sends nothing until resumed, and goes on where it was. A
// seek (to a time within the window; it keeps the replay paused or
// playing) drops the replay's events not yet sent and goes on from the
// first event at or after the time sought; speed goes on at the new pace
// from where the replay is. A control of a replay that is not running is
// refused with an error frame. Every replay ends with
//
//	{"type":"replay_ended","seq":52,"replay_id":"r1","frames":44,"reason":"completed"}
//
// after its last event: reason is completed (it reached its end), stopped
// (by stop; its events not yet sent are dropped) or failed (the history
// could not be read; detail says so, and seeking or starting again
// retries); frames is how many replay frames it sent. Nothing of the
// replay follows it.
//
// A replay never mixes with the live feed: its frames have types of their
// own, and a connection receives live events only for its subscribe. A
// connection that only replays does not subscribe; one with a
// subscription keeps it while it replays, and the two take turns in its
// outbox, so that neither holds the other back.
//
// A replay costs little whatever its window: it reads each of its four
// streams (positions, entries, exits, job events) a page of
// ReplayPageRows rows at a time (500 by default), one query at a time,
// and only when it needs the next event, which is when the one before
// has gone into the client's outbox. A client that reads slowly slows its
// replay down: the replay waits for room (at most SendWindow of its
// events queued, and what the hub holds for the client within half of
// MaxPendingBytes), and is never dropped or closed for it; it catches up
// when the client does. The limits, each refused with an error frame
// naming the limit: MaxReplaysPerConnection (4) replays per connection,
// MaxReplaysPerCaller (8) per token, MaxReplays (64) in the hub,
// MaxReplaySpeed, and MaxReplayRange (366 days) for the window. A replay's
// place under them is given back when it ends: a client that has its
// replay_ended may start another.
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
//   - Whatever waits, coalesced positions included, counts its bytes:
//     what the hub holds for one client (queued, and handed to the
//     connection but not yet written) never passes MaxPendingBytes (4 MiB
//     by default). Coalescing bounds the frames of a fleet that keeps
//     reporting; it does nothing against a flood of distinct plates, each
//     of which takes its own place. A frame that would pass the limit
//     closes the connection with 1013, "too slow", as above. Each frame
//     counts its JSON and a fixed 320 bytes for the hub's bookkeeping of
//     it, so that the limit bounds memory, not only payload.
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
// tms_ws_upgrades_refused_total{reason} (unauthorised, origin,
// caller_connections, connections), tms_ws_client_held_bytes_peak (the
// most the hub has held for one client, against MaxPendingBytes),
// tms_ws_push_latency_seconds (from tms receiving the event: a position's
// data.received_at, its MQTT receipt, else the Kafka record's timestamp,
// to its frame being written), tms_ws_feed_records_skipped_total,
// tms_ws_replays (running), tms_ws_replays_started_total and
// tms_ws_replays_refused_total{limit} (connection, caller, total).
package ws
