package httpapi

import (
	"context"
	"fmt"
	"log/slog"
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

// checkResult is one readiness check's outcome, as /readyz shows it: by
// the check's name, without its error, whose text may hold a
// dependency's address, user or worse. The error goes to the log.
type checkResult struct {
	Status string `json:"status"` // "ok" or "failed"
}

// readinessJSON is /readyz's answer when every check passed.
type readinessJSON struct {
	Status string                 `json:"status"`
	Checks map[string]checkResult `json:"checks"`
}

// notReadyError is a readiness run in which some checks failed. Its text
// is the problem's detail: names only.
type notReadyError struct {
	failed []string
	checks map[string]checkResult
}

func (e *notReadyError) Error() string {
	return "not ready: " + strings.Join(e.failed, ", ") + " failed (the causes are in the server's log)"
}

// readyz serves GET /readyz: 200 when every check passed, else a 503
// problem naming the failed checks. The answer comes from readiness: at
// most one run of the checks per ReadinessInterval.
func (s *server) readyz(c *gin.Context) {
	checks, err := s.ready.results(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
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

// readiness runs the checks on behalf of every /readyz request: at most
// one run per interval (a younger result is answered as it is), and one
// at a time (requests that come while it runs wait for it), so that a
// flood of /readyz cannot become a flood of pings on Postgres and Kafka.
// A run is not tied to any request: a client hanging up does not cancel
// the probe others wait for.
type readiness struct {
	checks   []Check
	timeout  time.Duration
	interval time.Duration
	metrics  *metrics
	log      *slog.Logger

	mu      sync.Mutex
	started time.Time
	done    chan struct{} // the latest run's; closed when it has finished
	last    map[string]checkResult
	// failing is when each failing check was last logged.
	failing map[string]time.Time
}

// failureLogEvery bounds how often one check that keeps failing is
// logged: once when it fails, then at most once per this.
const failureLogEvery = time.Minute

func newReadiness(checks []Check, timeout, interval time.Duration, m *metrics, log *slog.Logger) *readiness {
	return &readiness{checks: checks, timeout: timeout, interval: interval, metrics: m, log: log,
		failing: make(map[string]time.Time)}
}

// results returns the latest run's results, running the checks first
// when there is none younger than interval.
func (r *readiness) results(ctx context.Context) (map[string]checkResult, error) {
	r.mu.Lock()
	done := r.done
	if done == nil || (isClosed(done) && time.Since(r.started) >= r.interval) {
		done = make(chan struct{})
		r.done, r.started = done, time.Now()
		go r.run(done)
	}
	r.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, nil
}

// run runs every check, records the results and closes done.
func (r *readiness) run(done chan struct{}) {
	r.metrics.readinessRuns.Inc()
	errs := runChecks(context.Background(), r.checks, r.timeout)
	results := make(map[string]checkResult, len(errs))
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, err := range errs {
		if err == nil {
			results[name] = checkResult{Status: "ok"}
			if _, was := r.failing[name]; was {
				r.log.Info("readiness check passes again", "check", name)
				delete(r.failing, name)
			}
			continue
		}
		results[name] = checkResult{Status: "failed"}
		if logged, was := r.failing[name]; !was || now.Sub(logged) >= failureLogEvery {
			r.log.Warn("readiness check failed", "check", name, "err", err)
			r.failing[name] = now
		}
	}
	r.last = results
	close(done)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// runChecks runs every check at once, so /readyz takes as long as the
// slowest check (at most timeout), not their sum.
func runChecks(ctx context.Context, checks []Check, timeout time.Duration) map[string]error {
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Go(func() { results[i] = runCheck(ctx, ch, timeout) })
	}
	wg.Wait()
	out := make(map[string]error, len(checks))
	for i, ch := range checks {
		out[ch.Name] = results[i]
	}
	return out
}

// runCheck runs one check within timeout. The check runs in a goroutine
// of its own so that one ignoring its context cannot hold /readyz past
// the deadline; a panicking check is a failed check, not a dead server.
func runCheck(ctx context.Context, ch Check, timeout time.Duration) error {
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
	return err
}
