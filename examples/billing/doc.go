// Package billing holds no Go code. It is the home of the reference
// billing consumer, billing.py: a Python program, using confluent-kafka,
// that a billing team could start from, written against nothing but the
// contract of tms.jobs (schemas/, docs/consumers.md). That a consumer in
// another language can charge every job exactly once from the topic is the
// point; the package's test proves it: it produces a simulated day of jobs
// to a real Kafka the way the job processor would (transactions, some of
// them aborted, with the API's commands among the events), runs the
// consumer, kills it, runs it again, and checks every row of its output
// against freight computed here, in Go, from what was produced.
package billing
