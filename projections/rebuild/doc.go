// Package rebuild rebuilds read models from the start of their topics
// without taking them away from the API: `tms rebuild` (and its alias
// `tms replay read-models`).
//
// # Where the new tables are built
//
// A rebuild makes a schema of its own, tms_rebuild_<id>, and runs tms's
// migrations into it (search_path set to it alone), so that its tables are
// made by the very DDL that made the live ones: partitioned where those
// are, with their indexes, constraints and storage parameters. Each read
// model's projector runs a second time beside the live one, in a consumer
// group of its own (<name>.rebuild.<id>), with its offsets in the
// schema's own projector_offsets and every transaction's search_path set
// to the schema alone: the projections name their tables unqualified, so
// the same code writes the shadow tables and can touch no live one.
//
// # The switch
//
// Once every read model being rebuilt has reached the ends its topics had
// when the run started, and come within a batch of its live projector,
// the rebuild switches over in one transaction (see trySwitch): it pauses
// the live projectors by taking the offset locks every projector
// transaction takes first, waits for the rebuild to reach them, stops the
// rebuild's projectors the same way, drops the live tables, moves the
// shadow ones (and their partitions) into their place, hands the rebuild's
// offsets to the live projectors, and drops the shadow schema. The live
// projectors then go on from the rebuild's offsets, skipping what the
// rebuild applied. Locks are waited for at most SwitchLockTimeout: a long
// API query puts the switch off rather than stalling the API behind it.
//
// # State
//
// A rebuild's state lives in Postgres: the shadow schema holds its tables
// and its offsets, and tms_rebuild.rebuilds and rebuild_models its state
// and progress, which GET /api/v1/rebuilds shows (Store). An interrupted
// rebuild (stopped, or its process killed) goes on from its offsets when
// `tms rebuild` runs again for the same read models. One process rebuilds
// at a time: it holds an advisory lock for its session.
package rebuild
