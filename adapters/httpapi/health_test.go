package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore(), func(c *Config) {
		c.Checks = []Check{{Name: "down", Check: func(context.Context) error { return errors.New("down") }}}
	})
	// Alive even when a dependency is down: liveness checks no dependency.
	got := decode[map[string]string](t, a.do(t, http.MethodGet, "/healthz", ""), "application/json")
	if got["status"] != "ok" || len(got) != 1 {
		t.Errorf("healthz = %v", got)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	failing := func(context.Context) error { return errors.New("dial tcp 127.0.0.1:5432: connection refused") }
	// hangs honours its context but never answers on its own.
	hangs := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name   string
		checks []Check
		failed map[string]string // check name -> a substring of its error
	}{
		{name: "no checks", checks: nil},
		{name: "all pass", checks: []Check{{"postgres", ok}, {"kafka", ok}}},
		{name: "one fails", checks: []Check{{"postgres", failing}, {"kafka", ok}},
			failed: map[string]string{"postgres": "connection refused"}},
		{name: "two fail", checks: []Check{{"postgres", failing}, {"mqtt", failing}, {"kafka", ok}},
			failed: map[string]string{"postgres": "refused", "mqtt": "refused"}},
		{name: "one times out", checks: []Check{{"kafka", hangs}, {"postgres", ok}},
			failed: map[string]string{"kafka": "no answer within"}},
		{name: "one ignores its context", checks: []Check{{"kafka", ignoresContext(t)}},
			failed: map[string]string{"kafka": "no answer within"}},
		{name: "one panics", checks: []Check{{"mqtt", func(context.Context) error { panic("boom") }}},
			failed: map[string]string{"mqtt": "panicked: boom"}},
		{name: "checks run concurrently", checks: rendezvous(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t, noStore(), func(c *Config) {
				c.Checks = tt.checks
				c.CheckTimeout = 50 * time.Millisecond
				if tt.name == "checks run concurrently" {
					// Run one after the other, the rendezvous would fail;
					// leave it time to succeed on a loaded machine.
					c.CheckTimeout = 10 * time.Second
				}
			})
			w := a.do(t, http.MethodGet, "/readyz", "")
			if len(tt.failed) == 0 {
				got := decode[readinessJSON](t, w, "application/json")
				if got.Status != "ok" || len(got.Checks) != len(tt.checks) {
					t.Errorf("readyz = %+v", got)
				}
				for name, r := range got.Checks {
					if r.Status != "ok" {
						t.Errorf("check %s: %+v", name, r)
					}
				}
				return
			}
			p := wantProblem(t, w, "/readyz", http.StatusServiceUnavailable)
			if len(p.Checks) != len(tt.checks) {
				t.Errorf("checks %v, want all %d", p.Checks, len(tt.checks))
			}
			for _, ch := range tt.checks {
				r := p.Checks[ch.Name]
				want, bad := tt.failed[ch.Name]
				switch {
				case bad && (r.Status != "failed" || !strings.Contains(p.Detail, ch.Name)):
					t.Errorf("check %s: %+v, detail %q; want it failed and named", ch.Name, r, p.Detail)
				case bad && (strings.Contains(w.Body.String(), want) || !strings.Contains(a.logs.String(), want)):
					t.Errorf("check %s: its error %q must be in the log, not in the answer %s", ch.Name, want, w.Body)
				case !bad && (r.Status != "ok" || strings.Contains(p.Detail, ch.Name)):
					t.Errorf("check %s: %+v, detail %q; want it ok and not named", ch.Name, r, p.Detail)
				}
			}
		})
	}
}

// ignoresContext is a check stuck until the test ends, whatever its
// context says.
func ignoresContext(t *testing.T) func(context.Context) error {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	return func(context.Context) error { <-stuck; return nil }
}

// rendezvous returns n checks that each pass only once all n are
// running: they pass only if readyz runs them concurrently.
func rendezvous(n int) []Check {
	var wg sync.WaitGroup
	wg.Add(n)
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	checks := make([]Check, n)
	for i := range checks {
		checks[i] = Check{Name: "check" + itoa(i), Check: func(ctx context.Context) error {
			wg.Done()
			select {
			case <-all:
				return nil
			case <-ctx.Done():
				return errors.New("the other checks did not run alongside")
			}
		}}
	}
	return checks
}
