// Package backfill fills the gaps in tms's history from G7's HTTP API:
// it walks each vehicle's past track (adapters/g7api), turns every row
// into a tms.position.reported.v1 event exactly like a live fix's (the
// same deterministic id, from the plate and the fix time; only the
// envelope's source, /tms/backfill/g7, says where it came from), and
// appends the fixes tms does not have yet to tms.positions. Rows G7 sends
// that are not valid fixes go to tms.deadletter with their reason.
//
// # Exactly once
//
// Two things make a fix count once, whatever happens to a run:
//
//   - Before a page is produced, the fixes tms already has (the positions
//     read model, keyed by plate and fix time, as the event id is) are left
//     out. A fix the service received live, or a page a crashed run
//     produced and the projector has stored since, is not sent again.
//   - How far each plate got is recorded (Store, table backfill_progress)
//     only after Kafka has acknowledged every record of the page (acks=all,
//     idempotent producer), and a rerun of the same range starts there.
//
// A run killed between Kafka's acknowledgement and the progress record
// sends that one page again on its rerun, less what the projector has
// stored since: those records carry the ids of the first ones, and every
// consumer of tms.positions stores a fix once by its plate and fix time
// (docs/backfill.md, "Resume"), so the history derived from the topic has
// each fix exactly once.
//
// # What the count of a dry run means
//
// A dry run walks the same pages and says, per plate, how many fixes it
// would add: the rows fetched, less the rejected ones, less those the
// positions read model has. It writes nothing: no record, no progress.
package backfill
