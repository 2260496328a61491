// Package txloop runs a stateful stream processor's exactly-once loop:
// consume-transform-produce in Kafka transactions (franz-go's
// GroupTransactSession), with the processor's in-memory state of each
// partition it owns kept in step with what the transactions commit. The
// geofence and the job processor run it; what a batch does is theirs
// (Config.Process), and so is how a partition's state is restored.
//
// # A transaction
//
// A transaction begins once a poll brings records, or when the processor
// has something to do without them (Config.Due). It takes the batch
// polled, then whatever else arrives until CommitInterval has passed since
// it began or MaxBatch records are in it. Holding a transaction open for
// a moment is what Kafka Streams does with exactly-once too
// (commit.interval.ms), and for the same reasons: fewer, bigger
// transactions cost the broker less, and a transaction that begins the
// instant the previous one ended races the coordinator still writing that
// one's markers. A transaction that has produced nothing yet then fails
// its offset commit with CONCURRENT_TRANSACTIONS, which franz-go answers
// by aborting, and every abort means restoring every partition's state.
//
// The transaction commits, with the consumed offsets, if everything the
// batch produced was acknowledged; otherwise it is aborted. After an
// abort the consumed offsets are back at the last commit, and so must the
// state be: the loop forgets the state of every partition
// (Partitions.Held), and the processor restores each from what was
// committed when its records come again.
//
// # Rebalances
//
// The session's callbacks note the partitions the group assigns and takes
// away (Partitions.Options); the loop drops the state of a partition
// taken away after the poll that follows, in its own goroutine, which
// alone touches the states. A transaction that spans a rebalance fails,
// and is aborted.
//
// # Stopping
//
// Once ctx ends, Run aborts the open transaction at once, rather than
// leave it open until it times out, holding back every read_committed
// consumer of the topics it wrote to, and returns nil.
package txloop
