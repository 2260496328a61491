// Package station is the station catalogue's command model: what a client
// may define as a station, how a definition is read and validated, how the
// catalogue's commands (create, put, delete) are decided against a
// station's current version, and how the outcome is encoded as the events
// of tms.stations, the compacted topic that is the catalogue's system of
// record.
//
// # The resource
//
// A station is defined by a JSON resource (see docs and DESIGN.md):
//
//	{"id": "S001", "name": "Yangshan gate 3", "type": "loading",
//	 "coord_system": "gcj02",
//	 "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]},
//	 "radius_m": 300,
//	 "detection": {"exit_margin_m": 50}}
//
// Parse reads one strictly: an unknown or repeated field, a value of the
// wrong JSON type or out of range is an error naming the field by its JSON
// path (geometry.coordinates[0][3], detection.exit_margin_m), and every bad
// field is reported at once in a *ValidationError. The geometry is GeoJSON:
// a Point with radius_m (a circle, 10 m to 50 km) or a Polygon or
// MultiPolygon (holes allowed, rings closed, nothing crossing; see
// domain/geo). Coordinates given in GCJ-02 (coord_system "gcj02", what
// Chinese maps show) are converted to WGS84, the datum of GPS fixes, and
// the converted shape is validated again; the shape as given is kept as
// the original geometry. Rules bound what a definition may cost (its
// positions); Parse uses the defaults.
//
// A station is validated once, when it is defined. FromEvent, which reads
// the catalogue back from tms.stations, trusts the geometry it finds there
// and checks only its size and structure, in linear time: the full
// validation, a sweep over every edge, would run on every read of every
// station.
//
// # Commands and versions
//
// Every accepted command becomes one event with the station's next
// version: 1 for a station that never existed, the previous event's
// version plus one otherwise, deletions included, so that a station
// deleted and created again continues its versions and its event ids never
// repeat. Commands are decided by CreateStation, PutStation and
// DeleteStation against Current, the station's standing when the command
// is handled, with the client's preconditions (If-Match, If-None-Match) in
// a Condition. Deciding is pure; the caller serialises the commands of one
// station and appends the event.
//
// # Events
//
// tms.station.upserted.v1 carries the station as stored (Upserted);
// tms.station.deleted.v1 its id and version (Deleted). The envelope's time
// is the command's time: the change applies to fixes taken from then on,
// whenever they are processed. Event ids are derived from the type, the
// station id and the version. FromEvent decodes either into a Change,
// which the geofence applies to its catalogue (Change.ApplyTo) and the
// stations read model stores.
//
// Deleting a station is an event, not a Kafka tombstone: compaction then
// keeps a deleted station's last record, and with it the version a
// re-created station continues from.
package station
