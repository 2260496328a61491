// Package domain is the root of tms's business logic. Its sub-packages hold
// events, aggregates, and geofence and trip rules. They import only the
// standard library and small pure helpers (no Kafka, Postgres, MQTT, HTTP or
// H3): everything they need from outside is a small interface declared
// where it is used, and every decision takes its time from its input, never
// from the clock, so replaying the topics reproduces the same events.
package domain
