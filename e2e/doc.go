// Package e2e tests the tms binary as its users run it: built from
// cmd/tms, started as a separate process against the real Postgres, MQTT
// broker and Kafka that `make test` starts, fed by clients tms did not
// write (mosquitto_pub, a plain paho publisher), and read through its
// HTTP API, its WebSocket and the Kafka topics. The crash tests kill the
// process with SIGKILL mid-stream and check that nothing was lost or
// doubled.
package e2e
