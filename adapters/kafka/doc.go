// Package kafka connects tms to Kafka, its system of record: the topic
// catalogue and its settings, client construction with tms's delivery
// settings (idempotent producer, acks from all in-sync replicas,
// read_committed consumers), topic creation, and the embedded
// Kafka-protocol broker (franz-go's kfake) that `make run` uses when no
// brokers are configured.
package kafka
