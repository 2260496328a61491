// Package httpapi is tms's query API (the `api` role): a gin engine that
// serves the read models over HTTP as JSON, under /api/v1, together with
// the operational endpoints /healthz, /readyz and /metrics.
//
// # Resources
//
// GET /api/v1/vehicles lists vehicles with their latest position, keyset
// paginated by plate (limit, opaque cursor) and filtered by plate, by a
// plate search (search: plates containing the text, matched literally) and
// by a bounding box that may cross the antimeridian. GET /api/v1/vehicles/{plate}
// returns one vehicle; GET /api/v1/vehicles/{plate}/track returns its fixes
// in fix-time order over a window of any length, as JSON or GeoJSON,
// paginated by fix time, or with max_points the whole window simplified
// (docs/history.md). GET /api/v1/exports/{kind} streams positions, visits
// or jobs over a range as CSV or newline-delimited GeoJSON. Plates in paths are normalised the way ingest
// normalises them (domain/position.NormalizePlate), so "沪a12345" finds
// "沪A12345". Vehicles carry the stations they are in now (their open
// visits), read for a whole page in one query.
//
// GET /api/v1/stations lists the live stations (keyset by id, filtered by
// type); GET /api/v1/stations/{id} returns one with the vehicles inside it
// now and its version as ETag. GET /api/v1/visits lists the visits that
// overlap a window, newest entry first, filtered by station, vehicle and
// open or closed.
//
// GET /api/v1/jobs lists jobs, newest creation first, filtered by
// vehicle, status, station (any stop) and creation and completion time
// ranges, keyset by (created_at, id); GET /api/v1/jobs/{id} returns one
// with its stops' progress and, once completed, its latest completion's
// facts; GET /api/v1/jobs/{id}/track returns the vehicle's fixes of the
// job's window with the stops marked, as JSON, GeoJSON or the original
// system's playback shape, whose distances are measured over the whole
// window as the job's completion is (domain/track's filter).
//
// GET /api/v1/replays lists the runs of `tms replay geofence` (newest
// first, filtered by station), GET /api/v1/replays/{id} returns one, and
// GET /api/v1/replays/{id}/visits pages through the visits it found in
// entry order, keyset by (entered_at, visit_id). A replay is derived
// history: one station, as it stands now, applied to past positions. Every
// replay resource carries "kind": "replay" and a note saying so, and none
// of it is ever mixed into /api/v1/visits or tms.geofence, which billing
// consumes.
//
// GET /api/v1/vehicles/{plate}/g7-events lists the stop, idle and EMS
// events G7's feeds reported for a vehicle that overlap a window, one per
// event (the report of highest rank: docs/g7.md), filtered by kind, keyset
// by (start, id). GET /api/v1/vehicles/{plate}/g7-stops/comparison sets
// G7's stops beside those tms derived (projections/trips) and answers the
// pairs both saw, with their differences, and each side's own, by the
// matching rule of domain/g7event.Compare.
//
// Outside /api/, GET and HEAD of the web dashboard's files
// (Config.Dashboard, adapters/dashboard) are served without a token, at
// the paths no route takes; every other path keeps the 404 problem.
//
// GET /api/v1/openapi.json is the OpenAPI document of every
// endpoint; it is hand-written, embedded, and a test checks that it and the
// routes the engine registers name the same paths.
//
// # Writes
//
// POST /api/v1/stations, PUT and DELETE /api/v1/stations/{id} need the
// operator role. They are commands: the body is parsed strictly by
// domain/station (every bad field named by its JSON path), the command is
// handed to StationCommands, which appends its event to tms.stations and
// answers once the stations read model shows it (201 or 200 with the
// stored station and its ETag, 204 for a deletion), or 202 with the event
// id when that takes too long. PUT and DELETE honour If-Match (412 when it
// does not hold); PUT honours If-None-Match: * (create only). Bodies must
// be application/json (else 415), of at most 2 MiB (else 413).
//
// POST /api/v1/jobs and POST /api/v1/jobs/{id}/cancel need the operator
// role too. The body's shape is read here (every bad field named by its
// JSON path, unknown fields refused); what its values must be is
// domain/job's, checked by JobCommands against the read models. They
// answer once the jobs read model shows what the command did (201 with
// Location, or 200 for a create repeating its external reference, or for
// a cancellation), 202 with the job id when that takes longer, 409 for a
// reference of other content or a job that has ended.
//
// # Errors
//
// Every error is an RFC 9457 application/problem+json document whose
// "instance" is the request path. Handlers never write errors themselves:
// they record them on the gin context, and one middleware maps them to a
// status (see problem.go). Validation errors name every bad parameter in
// "errors"; anything the mapping does not recognise is a 500 whose detail
// is generic and whose cause goes to the log only.
//
// # Authentication
//
// Everything under /api/v1 needs a bearer token, each configured token
// carrying a role: viewer (reads) or operator (reads and writes). Tokens
// are compared in constant time against every configured token. Browsers
// cannot set headers on a WebSocket, so /api/v1/ws alone also accepts the
// token in the access_token query parameter. The authenticated role rides
// in the request context (RoleFrom), and RequireRole guards write routes.
// Health, readiness and metrics are open, as probes and scrapers expect.
//
// # Limits
//
// No client may hold or starve the server (docs/security.md, "HTTP API").
// Serve runs the handler under ServerConfig: header, request, write and
// idle timeouts, a header size and a cap on open connections. The handler
// gives each valid token, and each remote address for everything else, a
// request budget (RateLimit), answered 429 with Retry-After when spent;
// the two are apart, so that an address's unauthenticated flood never
// spends a token's budget. GET /readyz runs its checks at most once per
// ReadinessInterval, however often it is asked, and names a failed check
// without its error, which goes to the log. The WebSocket handler lifts
// the server's deadlines before the hub takes the connection over.
//
// # Wiring
//
// cmd/ parses TMS_API_TOKENS with ParseTokens, fills a Config (the
// vehicles, stations, visits and replays stores, the station commands, the
// readiness checks, the WebSocket hub, the process's Prometheus registry)
// and serves the handler New returns with Serve. gin's debug
// mode is process-wide; cmd/ switches it off with gin.SetMode.
package httpapi
