// Package commandlog is what the command handlers (stationcmd, jobcmd)
// share: a topic commands are appended to, and the read model, projected
// from that topic, that the next command is decided on.
//
// Both handlers decide a command against a read model that may lag its
// topic, and both make it safe the same way, so the way lives here once:
// a command is decided under a Postgres advisory lock on its subject's id
// (transaction-scoped, so a crashed instance's lock goes with its
// connection), and only once the read model has applied every record
// the topic held before the lock was taken (Log.CaughtUp, from the
// projector's stored offsets, against Log.Ends, the topic's last stable
// offsets). A command decided earlier on the same id was appended before
// its lock was released, so it is below those offsets and its effect is
// seen. The last stable offset is where a read_committed reader (every
// projector) can get to: on a topic written in transactions (tms.jobs,
// by the job processor) an open transaction holds it back, and on one
// written without (tms.stations) it is the end of the topic.
//
// Waiting for the read model and for the lock happens without holding a
// connection (Log.Decide polls, then tries pg_try_advisory_xact_lock, and
// lets go and waits again when the lock is taken or the topic has moved
// on): waiters that held connections could starve the pool of the
// projector they wait for. A command that cannot be decided within the
// timeout fails with the handler's unavailable error, having appended
// nothing.
//
// A decided command is appended (Log.Append) whether or not its client
// still waits for the answer; the answer then waits (Await) for the read
// model to show what the command did: read-your-writes, or "accepted"
// after a timeout.
package commandlog
