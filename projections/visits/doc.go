// Package visits is the visits read model: every visit of a vehicle to a
// station, from tms.geofence, open from its entry until its exit. Open
// visits answer who is inside a station now and which stations each
// vehicle is in. It holds the projection that builds the visits table and
// the queries the API reads it with.
//
// An entry inserts an open visit (once: a repeated entry changes nothing);
// an exit closes it with its time, dwell and flags, or, when the entry
// was never seen, inserts the visit closed. Corrections for late fixes and
// crossings between sparse fixes arrive as an entry and an exit together
// and make a closed visit of their own. Alerts are not visits and are
// skipped.
package visits
