// Package layering holds no code: its test checks the package layering
// the design relies on, so that breaking it fails the build's tests
// rather than waiting for a reviewer to notice.
//
//   - domain/... imports only the standard library, other domain packages
//     and small pure libraries (uuid, a JSON decoder): no adapters, pipeline, projections
//     or infrastructure modules (Kafka, Postgres, gin, paho, melody,
//     Prometheus, h3-go).
//   - projections/... and pipeline/... import no cmd, and no API adapter
//     (httpapi, ws): read models and processors know nothing of how they
//     are served.
//   - projections/... other than the generic projector import no
//     adapters/kafka: a read model names its topics by their contract
//     names (domain/event) and leaves the Kafka client to
//     projections/projector.
//   - nothing imports cmd/...
package layering
