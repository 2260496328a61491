// Package stations is the stations read model: the station catalogue as of
// the last event of tms.stations for each station, deleted stations
// included (they keep their row and version, marked deleted). It holds the
// projection that builds the stations table from tms.stations and the
// queries the API and the station commands read it with.
//
// The projection is idempotent under replay: an upsert or a deletion is
// applied only if its version is at least the stored one, so reading the
// topic again, or reading it after compaction has dropped superseded
// records, ends in the same rows.
package stations
