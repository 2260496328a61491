package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
	"github.com/tmsfleet/tms/projections/replays"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// problemBase prefixes every problem type URI. The types are identifiers
// (RFC 9457 §3.1.1): clients compare them, nothing needs to be served there.
const problemBase = "https://tms.example/problems/"

// problem is an RFC 9457 problem details document.
type problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail"`
	Instance string       `json:"instance"`
	Errors   []fieldError `json:"errors,omitempty"`
	// Checks is the readiness answer, an extension member of not-ready.
	Checks map[string]checkResult `json:"checks,omitempty"`
}

// fieldError names one bad query parameter, path parameter or body field.
type fieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// invalidError is a request whose parameters failed validation: all of
// them at once, so a client fixes its request in one round trip.
type invalidError struct {
	fields []fieldError
}

func (e *invalidError) Error() string {
	parts := make([]string, len(e.fields))
	for i, f := range e.fields {
		parts[i] = f.Field + ": " + f.Detail
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Errors of routing, mapped to 404 and 405.
var (
	errNoRoute  = errors.New("no such resource")
	errNoMethod = errors.New("method not allowed on this resource")
)

// problemFor maps an error to its problem: the one place where errors
// become statuses. The detail of a client error is the error's own text,
// written by this package for the client; anything unrecognised is a 500
// whose detail says nothing of its cause (which may hold SQL, hostnames or
// data), and is logged instead.
func (s *server) problemFor(c *gin.Context, err error) problem {
	p := problem{Detail: err.Error(), Instance: c.Request.URL.EscapedPath()}
	set := func(status int, slug, title string) {
		p.Status, p.Type, p.Title = status, problemBase+slug, title
	}
	var invalid *invalidError
	var badStation *station.ValidationError
	var notReady *notReadyError
	var limited *rateLimitedError
	var badJob *job.ValidationError
	var gone *historyGoneError
	var busy *busyError
	if errors.As(err, &badStation) {
		invalid = &invalidError{fields: fieldErrors(badStation)}
		err = invalid
	}
	if errors.As(err, &badJob) {
		invalid = &invalidError{fields: jobFieldErrors(badJob)}
		err = invalid
	}
	switch {
	case errors.As(err, &invalid):
		set(http.StatusBadRequest, "invalid-parameter", "Invalid request parameters")
		p.Errors = invalid.fields
		names := make([]string, len(invalid.fields))
		for i, f := range invalid.fields {
			names[i] = f.Field
		}
		p.Detail = "invalid: " + strings.Join(names, ", ") + " (see errors)"
	case errors.Is(err, errUnauthenticated):
		set(http.StatusUnauthorized, "unauthorized", "Authentication required")
		c.Header("WWW-Authenticate", `Bearer realm="tms"`)
	case errors.Is(err, errForbidden):
		set(http.StatusForbidden, "forbidden", "Not allowed for this role")
	case errors.Is(err, vehicles.ErrNotFound):
		set(http.StatusNotFound, "not-found", "Vehicle not found")
	case errors.Is(err, station.ErrNotFound):
		set(http.StatusNotFound, "not-found", "Station not found")
	case errors.Is(err, replays.ErrNotFound):
		set(http.StatusNotFound, "not-found", "Replay not found")
	case errors.Is(err, job.ErrNotFound):
		set(http.StatusNotFound, "not-found", "Job not found")
	case errors.Is(err, trips.ErrNotFound):
		set(http.StatusNotFound, "not-found", "Trip not found")
	case errors.Is(err, job.ErrConflict):
		set(http.StatusConflict, "conflict", "External reference in use")
		p.Errors = []fieldError{{Field: "external_ref", Detail: err.Error()}}
	case errors.Is(err, job.ErrFinished):
		set(http.StatusConflict, "job-ended", "Job has ended")
	case errors.Is(err, station.ErrExists):
		set(http.StatusConflict, "conflict", "Station exists")
	case errors.Is(err, station.ErrPreconditionFailed):
		set(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed")
	case errors.Is(err, errUnsupportedMediaType):
		set(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type")
	case errors.Is(err, errBodyTooLarge):
		set(http.StatusRequestEntityTooLarge, "too-large", "Request body too large")
	case errors.Is(err, stationcmd.ErrUnavailable):
		set(http.StatusServiceUnavailable, "unavailable", "Try again")
		p.Detail = "the command could not be decided in time (the stations read model is behind, or other commands " +
			"on this station held it up); nothing was written: try again"
		c.Header("Retry-After", "1")
		s.log.WarnContext(c.Request.Context(), "station command unavailable", "route", c.FullPath(), "err", err)
	case errors.Is(err, jobcmd.ErrUnavailable):
		set(http.StatusServiceUnavailable, "unavailable", "Try again")
		p.Detail = "the command could not be decided in time (the jobs read model is behind, or other commands " +
			"on this job held it up); nothing was written: try again"
		c.Header("Retry-After", "1")
		s.log.WarnContext(c.Request.Context(), "job command unavailable", "route", c.FullPath(), "err", err)
	case errors.Is(err, errStarting):
		set(http.StatusServiceUnavailable, "starting", "Starting")
		p.Detail = err.Error()
		c.Header("Retry-After", "1")
	case errors.Is(err, errNoRoute):
		set(http.StatusNotFound, "not-found", "Not found")
		p.Detail = fmt.Sprintf("%s: %s", err, c.Request.URL.EscapedPath())
	case errors.Is(err, errNoMethod):
		set(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed")
		p.Detail = fmt.Sprintf("%s is not allowed here; allowed: %s", c.Request.Method, c.Writer.Header().Get("Allow"))
	case errors.As(err, &limited):
		set(http.StatusTooManyRequests, "rate-limited", "Too many requests")
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(limited.retryAfter)))
	case errors.As(err, &busy):
		set(http.StatusTooManyRequests, "busy", "Too much work under way")
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(busy.retryAfter)))
	case errors.As(err, &gone):
		set(http.StatusGone, "history-dropped", "History dropped by retention")
	case errors.As(err, &notReady):
		set(http.StatusServiceUnavailable, "not-ready", "Not ready")
		p.Checks = notReady.checks
	case errors.Is(err, context.DeadlineExceeded):
		set(http.StatusServiceUnavailable, "timeout", "Timed out")
		p.Detail = "the read model did not answer in time; try again"
		s.log.WarnContext(c.Request.Context(), "request timed out", "route", c.FullPath(), "err", err)
	case c.Request.Context().Err() != nil:
		// The client has gone: nobody reads this answer, and it is no
		// server fault worth an error in the log.
		set(http.StatusServiceUnavailable, "canceled", "Request canceled")
		p.Detail = "the request was canceled"
		s.log.DebugContext(c.Request.Context(), "request canceled", "route", c.FullPath(), "err", err)
	default:
		set(http.StatusInternalServerError, "internal", "Internal server error")
		p.Detail = "the server failed to answer; the cause is logged"
		s.log.ErrorContext(c.Request.Context(), "request failed", "route", c.FullPath(), "method", c.Request.Method, "err", err)
	}
	return p
}

// renderErrors writes the problem for the error a handler recorded.
func (s *server) renderErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 {
		return
	}
	err := c.Errors.Last().Err
	if c.Writer.Written() {
		// Too late for a problem document: the status is on the wire.
		s.log.ErrorContext(c.Request.Context(), "error after the response started", "route", c.FullPath(), "err", err)
		return
	}
	p := s.problemFor(c, err)
	b, jerr := json.Marshal(p)
	if jerr != nil { // strings and ints only: cannot happen, but never answer nothing
		b = []byte(`{"type":"` + problemBase + `internal","title":"Internal server error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	c.Data(p.Status, contentProblem, b)
}

// recover turns a panicking handler into a 500 problem, logged with its
// stack, instead of a dropped connection. http.ErrAbortHandler is the
// deliberate way to drop one, so it is passed on.
func (s *server) recover(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		// Logged once, with the stack, by problemFor's 500 branch.
		fail(c, fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack()))
	}()
	c.Next()
}
