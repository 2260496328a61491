// Package jobcmd executes the job commands (create, cancel): it is the
// writer of the commands on tms.jobs, as stationcmd is of tms.stations,
// and the API's POST /api/v1/jobs and POST /api/v1/jobs/{id}/cancel call
// it. What a command does to a job is decided later, by the job processor
// (pipeline/jobs), in event-time order; see docs/jobs.md.
//
// # Creating a job
//
// Create gathers the facts a job is validated against (the stations its
// stops name, as the stations read model has them: name, type and
// reference point; and whether the vehicle has ever reported), has
// domain/job validate the request (job.NewCreate, dated when the command
// is handled), appends a tms.command.create_job.v1 record keyed by the
// plate with an idempotent producer, and waits until the jobs read model
// shows the job: read-your-writes, or Accepted after Config.Timeout. The
// job appears only once the job processor has applied the command, which
// it does once its event-time watermark has passed the command by its
// decision delay (8 s by default): Config.Timeout must be longer than
// that for an answer ever to show the job.
//
// # Idempotent on the external reference
//
// A job with an external reference has the id job.IDFor(ref), so every
// create of a reference names the same job. Creates (and cancellations)
// of one job id are serialised across API instances by a Postgres
// advisory lock on the id, as station commands are by theirs, and are
// decided on a read model that has caught up with tms.jobs: under the
// lock, the command checks that the jobs projection has applied every
// record of the topic (its stored offsets reach the topic's last stable
// offsets), then looks for the job, and for the create command of it
// (job_requests), which the projection keeps from the moment the command
// is appended, long before the processor has made a job of it. A repeat
// with the same content (vehicle, stops, cargo) changes nothing and
// answers the job as it stands (or Accepted, when the processor has not
// made it yet); different content is job.ErrConflict. The lock is held
// while deciding and appending, not while waiting for the read model to
// show the job: any later command of the id finds this one's record below
// the offsets it waits for. A job without a reference gets a random id and
// needs neither the lock nor the wait.
//
// Waiting for the read model and for the lock happens without holding a
// connection (pg_try_advisory_xact_lock, retried with a jittered pause);
// a command that cannot be decided within Config.DecideTimeout (the jobs
// projection is down, or the job is contended) fails with ErrUnavailable,
// having appended nothing. The machinery (the lock, the catching up, the
// append) is pipeline/commandlog's, shared with the station commands.
//
// # Cancelling a job
//
// Cancel refuses an unknown job (job.ErrNotFound: neither the job nor its
// create command is known) and one that has ended (job.ErrFinished:
// completed, cancelled, or every stop departed, so that its completion
// stands), appends tms.command.cancel_job.v1 keyed by the plate, and
// waits until the read model shows the job cancelled. If the processor
// finds that every stop had departed by the cancellation's time (the last
// departure raced the command), the job completes instead, and Cancel
// answers job.ErrFinished.
package jobcmd
