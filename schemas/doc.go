// Package schemas holds the JSON Schemas of tms's events (one file per
// event type, named after it), the CloudEvents envelope they share and the
// parts the job events share (job.json). They are the contract downstream
// consumers, billing among them, build against; docs/asyncapi.yaml
// describes the topics that carry them, and docs/consumers.md how to read
// them. The schemas are embedded so that tests can check every encoder
// against them.
//
// released/ holds a frozen copy of every schema as it was first committed
// to main. Tms's topics keep their events forever, so a schema may only
// change compatibly: every event its released copy accepted must stay
// valid (new optional fields, wider enums and ranges; no removed, renamed
// or newly required fields, no narrower types, enums, ranges or formats).
// A test compares each schema with its released copy; a change that must
// break makes a new type (.v2) with a schema and a released copy of its
// own. A schema being designed on a branch, not yet on main, is copied
// again with it until it is merged.
package schemas

import "embed"

// FS holds the schema files.
//
//go:embed *.json
var FS embed.FS

// Released holds the released copies, under released/.
//
//go:embed released/*.json
var Released embed.FS
