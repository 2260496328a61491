package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz serves GET /healthz: the process is alive and serving HTTP. It
// checks no dependency, so that a database outage makes instances unready
// (taken out of the load balancer) rather than dead (restarted in a loop).
func (s *server) healthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, contentJSON, map[string]string{"status": "ok"})
}

// checkResult is one readiness check's outcome.
type checkResult struct {
	Status string `json:"status"` // "ok" or "failed"
	Error  string `json:"error,omitempty"`
}

// readinessJSON is /readyz's answer when every check passed.
type readinessJSON struct {
	Status string                 `json:"status"`
	Checks map[string]checkResult `json:"checks"`
}

// notReadyError is a readiness run in which some checks failed.
type notReadyError struct {
	failed []string
	checks map[string]checkResult
}

func (e *notReadyError) Error() string {
	var b strings.Builder
	b.WriteString("not ready: ")
	for i, name := range e.failed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", name, e.checks[name].Error)
	}
	return b.String()
}

// readyz serves GET /readyz: 200 when every check passes, else a 503
// problem naming the failed checks and their errors.
func (s *server) readyz(c *gin.Context) {
	checks := runChecks(c.Request.Context(), s.cfg.Checks, s.cfg.CheckTimeout)
	var failed []string
	for name, r := range checks {
		if r.Status != "ok" {
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		fail(c, &notReadyError{failed: failed, checks: checks})
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, readinessJSON{Status: "ok", Checks: checks})
}

// runChecks runs every check at once, so /readyz takes as long as the
// slowest check (at most timeout), not their sum.
func runChecks(ctx context.Context, checks []Check, timeout time.Duration) map[string]checkResult {
	results := make([]checkResult, len(checks))
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Go(func() { results[i] = runCheck(ctx, ch, timeout) })
	}
	wg.Wait()
	out := make(map[string]checkResult, len(checks))
	for i, ch := range checks {
		out[ch.Name] = results[i]
	}
	return out
}

// runCheck runs one check within timeout. The check runs in a goroutine
// of its own so that one ignoring its context cannot hold /readyz past
// the deadline; a panicking check is a failed check, not a dead server.
func runCheck(ctx context.Context, ch Check, timeout time.Duration) checkResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1) // buffered: a late check must not block forever
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("check panicked: %v", r)
			}
		}()
		done <- ch.Check(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("no answer within %s", timeout)
	}
	if err != nil {
		return checkResult{Status: "failed", Error: err.Error()}
	}
	return checkResult{Status: "ok"}
}
