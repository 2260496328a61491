// Package schemas holds the JSON Schemas of tms's events (one file per
// event type, named after it) and the CloudEvents envelope they share.
// They are the contract downstream consumers, billing among them, build
// against; docs/asyncapi.yaml describes the topics that carry them. The
// schemas are embedded so that tests can check every encoder against them.
package schemas

import "embed"

// FS holds the schema files.
//
//go:embed *.json
var FS embed.FS
