// Package kafka connects tms to Kafka, its system of record: the topics'
// Kafka settings (retention, compaction, partitions) and their creation,
// client construction with tms's delivery settings (idempotent producer,
// acks from all in-sync replicas, read_committed consumers), namespacing of
// topic and group names, and the embedded Kafka-protocol broker (franz-go's
// kfake) that `make run` uses when no brokers are configured.
//
// The topic names themselves are a contract, not Kafka's: they are in
// domain/event, beside the event types, so that code which only names a
// topic need not import this package. Consumer group names are constants
// beside each consumer.
package kafka
