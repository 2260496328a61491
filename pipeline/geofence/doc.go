// Package geofence is the geofence role: a Kafka processor that reads
// tms.positions, decides with domain/geofence when vehicles enter and
// leave stations, and writes tms.vehicle.entered_station.v1,
// tms.vehicle.exited_station.v1 and tms.alert.raised.v1 events to
// tms.geofence, keyed by plate.
//
// # Exactly once
//
// Instances share the positions partitions in one consumer group. Each
// batch is consume-transform-produce in one Kafka transaction (franz-go's
// GroupTransactSession): the output events, the consumed offsets and, now
// and then, a snapshot of the vehicles' state commit together or not at
// all, and a rebalance during the batch aborts it. A read_committed
// consumer of tms.geofence therefore sees every event exactly once, after
// any crash. The loop is pipeline/txloop's, which the job processor runs
// too.
//
// # State
//
// The decisions depend on each vehicle's state (where it is, runs in
// progress, its reorder window). The processor keeps the states of its
// partitions in memory and, in the same transactions, snapshots them to
// tms.geofence.state, partition for partition: every SnapshotEvery records
// or SnapshotInterval, whichever comes first. A snapshot records the
// positions offset it is consistent with. When an instance takes over a
// partition (start, rebalance, or an aborted transaction), it restores the
// partition's latest committed snapshot and replays the positions from the
// snapshot's offset up to where consumption resumes, discarding what that
// replay produces: the tracker is deterministic, so the state it arrives at
// is the state the previous owner committed with. To be sure it has the
// latest committed snapshot, it first appends a marker to the state
// partition and reads until it sees it: everything committed before the
// marker has then been read, and a transaction left open by a crashed
// owner has been resolved. It reads back from the marker only as far as
// the latest snapshot begins (the partition is compacted, but holds every
// snapshot since its segment last rolled), and decodes that one alone.
// Snapshots are binary (snapshot_codec.go) or, with SnapshotFormat json,
// the JSON every version reads.
//
// # Stations
//
// Every instance reads the whole of tms.stations (one compacted partition)
// into a versioned catalogue and keeps reading it: a change reaches every
// instance within moments, with no restart. A station version applies to
// fixes taken at or after its time, so when a change arrives does not
// change any decision. At start, processing waits until the catalogue has
// caught up with the topic.
//
// # History for a new or changed station
//
// Replay (`tms replay geofence`) is apart from the processor: it applies
// one station, as it stands now, to the positions of a past range with a
// fresh tracker, and hands the transitions to its caller. It writes
// nothing to Kafka, so what it derives never mixes with tms.geofence. It
// reads each positions partition up to its last stable offset, with
// transaction markers, so that it also finishes on positions written in
// transactions.
package geofence
