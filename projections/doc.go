// Package projections lists the read models tms builds (All). Each read
// model is a sub-package with its projection (how records become rows) and
// its queries; projector runs them. Every read model is a pure function of
// the Kafka topics: `tms rebuild` builds it afresh from them while the
// API serves the current one, and switches over.
//
// # Adding a read model
//
// Write its package: a Projection (Decode and Apply, see
// projections/projector), a NewProjection(prometheus.Registerer,
// *slog.Logger) constructor, its consumer group name as a constant, and a
// projector.Spec naming the group, the topics it reads and the tables it
// writes. Add its tables in a migration, and one line to All. The project
// role then runs it (with TMS_PROJECTOR_MEMBERS members when its topics
// are partitioned), and `tms rebuild` rebuilds it with the others
// (projections/rebuild): for that, its SQL names its tables unqualified,
// and it reads and writes no tables but its own.
package projections
