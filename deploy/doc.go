// Package deploy holds the deployment files (docker-compose.yml at the top
// of the repository, the Mosquitto configuration, Kubernetes manifests, a
// systemd unit, the Kafka broker the tests run) and no code: its tests
// check those files against what docs/security.md promises of them, with
// the real Mosquitto where it matters.
package deploy
