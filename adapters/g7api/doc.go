// Package g7api is a client of G7's open HTTP API, for the one thing tms
// asks of it: a vehicle's past track (history_location), which `tms
// backfill g7` turns into position events for the gaps in tms's history.
//
// G7 is an outside service that throttles, fails and answers slowly, and
// its history of a vehicle can run to millions of rows, so the client is
// built for a long walk that must not hurt it or be hurt by it:
//
//   - Every request is signed (Sign, StringToSign; docs/backfill.md,
//     "Signing") with the key and secret of Config. The secret never
//     appears in an error, a log line or a printed Config (Secret).
//   - A range is asked for in windows of at most Config.Window (31 days,
//     G7's limit), and a window in pages of at most Config.PageSize rows
//     (1,000). The next page is asked for by time, not by number: from the
//     second of the last row received, the rows already received dropped
//     (History). A page cut in the middle of one second therefore loses
//     nothing, and a walk can resume from any row it got to.
//   - Requests are paced (Config.Rate), bounded in time (Config.Timeout)
//     and in size (Config.MaxResponseBytes), and retried with exponential
//     backoff and full jitter (Config.Retries) on network errors, HTTP
//     5xx and 429, and G7's throttling envelope (Config.ThrottleCodes).
//   - A non-success envelope is an *Error naming code, sub_code, msg,
//     sub_msg and req_id, which is what G7's support asks for.
//   - Rows are parsed one by one (ParseRow): a bad row is rejected with a
//     reason and its raw bytes and never stops the page.
package g7api
