// Package projections groups tms's read-model builders, one sub-package
// per read model, and the projector that runs them; this package holds what
// the read models share (Skips). Every read model is a
// pure function of the Kafka topics: drop the tables and `tms replay`
// rebuilds them.
package projections
