// Package jobs is the jobs read model: every job as the job processor's
// events on tms.jobs leave it (its status, its stops with their progress,
// its latest completion), the stations of each job's stops for queries by
// station, and the create commands the API appended. It holds the
// projection that builds the tables and the queries the API and the job
// commands (pipeline/jobcmd) read them with. docs/jobs.md is the contract
// of the events.
//
// Every event is applied idempotently, so that a replay of the topic, or
// an event that comes again after later ones, changes nothing: a created
// job is inserted once; started sets a start not yet set; a stop arrives
// only while pending and departs only once; a completion or an amendment
// applies only over a lower revision (billing's rule: the highest revision
// wins); a cancellation applies only to a job not yet done.
//
// The commands (tms.command.*) are not events of a job. The cancel
// command is skipped; the create command is kept in job_requests, the
// first one per job id, because the job exists for the API from the
// moment its command is appended, seconds before the processor decides
// it: a second create of the same external reference must find it
// (answered as a repeat or refused as a conflict), and a cancellation of
// it must find its vehicle.
package jobs
