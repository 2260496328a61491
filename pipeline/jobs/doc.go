// Package jobs is the jobs role: a Kafka processor that reads a vehicle's
// job commands (tms.jobs), its entries and exits (tms.geofence) and its
// fixes (tms.positions), decides with domain/job how its jobs advance, and
// writes the job events to tms.jobs, keyed by plate. docs/jobs.md is the
// contract.
//
// # Partitions
//
// The three inputs are keyed by plate and co-partitioned (the processor
// refuses to start otherwise), and a range balancer gives partition p of
// every input to the same instance: a vehicle's inputs meet in one place.
// Its state lives in partition p of tms.jobs.state.
//
// # Steps, and exactly once
//
// Each partition's inputs are taken in steps: the records a poll brought,
// commands first, then visits, then fixes, each in offset order, then the
// inputs that have come due are applied and the jobs settled at the
// applied watermark. A vehicle's commands and visits are applied in
// event-time order once the watermark has passed them by the decision
// delay (domain/job.Rules), so the order in which the three topics happen
// to be read does not decide anything.
//
// The applied watermark is the positions' watermark as of the last
// position the geofence has decided: its consumer group's committed
// offset on tms.positions (the barrier), read every BarrierInterval. The
// geofence commits that offset in the transaction that writes the visits
// those positions made, so the watermark never runs ahead of the visits:
// if the geofence falls behind, job decisions wait for it.
//
// The barrier is the one input that does not come from the topics. So
// every step is logged in tms.jobs.state (how far it read each input, the
// barrier, the watermark it arrived at) in the transaction that took it,
// with the events it produced and the consumed offsets: they commit
// together or not at all (the transactional loop is pipeline/txloop's, as
// the geofence's is). Every SnapshotEvery records or SnapshotInterval
// a partition's state is snapshotted there too (and the steps it holds
// are deleted). A takeover (start, rebalance, aborted transaction)
// restores the latest committed snapshot and replays the steps logged
// since, over the same input records, checking that each arrives where it
// was logged: the state it ends with is the one its predecessor
// committed, so no event is lost or made twice.
//
// A replay from the beginning of the topics (a new group) takes steps of
// its own; it makes the same events, byte for byte, except where an input
// was applied out of its event-time order because it reached Kafka more
// than the decision delay late (counted in tms_jobs_late_inputs_total).
package jobs
