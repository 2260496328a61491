// Package ingest is the ingest role: it turns the G7 position feed, read
// from an MQTT broker, into tms.position.reported.v1 events on
// tms.positions, G7's stop, idle and EMS feeds (Config.Events, subscribed
// in the same session and told apart by their topic filters) into
// tms.g7.event.reported.v1 events on tms.g7events, and rejected input
// into tms.input.rejected.v1 dead letters on tms.deadletter. An event
// feed's message is one report and makes one record: the event, or its
// dead letter (docs/g7.md).
//
// Delivery: an MQTT message (QoS 1) is acknowledged to the broker only
// after Kafka has acknowledged every record made from it (acks from all
// in-sync replicas, idempotent producer). A crash before that leaves the
// message unacknowledged, and the broker redelivers it to the persistent
// session; the redelivered fixes have the same event ids (plate and fix
// time), and the read models store each fix once.
//
// No message stops ingest, whatever its content or Kafka's answer: a
// message makes at most MaxItems position records and MaxLetters dead
// letters plus two summaries, each of a size bounded by a constant
// (position.MaxEventBytes, deadletter.MaxEventBytes); a record Kafka
// refuses for itself is replaced by a record_refused dead letter; any
// other produce error holds the message unacknowledged, for the broker
// to send again, and is counted. A message larger than the MQTT packet
// limit arrives from the subscriber unread and becomes one too_large
// letter. docs/security.md, "Ingest (MQTT)", says why.
//
// Order: messages are handled one at a time in arrival order and records
// are produced asynchronously in that order, keyed by plate, so one
// vehicle's fixes reach its partition in the order the broker sent them.
package ingest
