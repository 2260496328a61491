// Package g7events is the read model of G7's stop, idle and EMS events
// (tms.g7events): one row per event, whatever G7 repeated or reported
// first open and then closed, and the queries the API reads it with.
//
// Every report of one event has the same g7_event_id (plate, kind, start
// time), which is the row's id. A report replaces the row's only when it
// ranks higher (g7event.Rank: closed over open, then the later pushTime,
// then the later end, then the greater envelope id): a repeat or an
// older report arriving late changes nothing, and the rows are the same
// whatever order the reports come in, so a rebuild from the topic gives
// what the live projector gave. docs/g7.md states the rule.
package g7events
