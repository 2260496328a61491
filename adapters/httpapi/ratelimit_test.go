package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// from sends a request from remoteAddr with token (none when empty).
func (a *testAPI) from(t *testing.T, remoteAddr, target, token string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	r.RemoteAddr = remoteAddr
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w
}

// wantRateLimited checks that w is a 429 problem with a Retry-After of
// at least one second.
func wantRateLimited(t *testing.T, w *httptest.ResponseRecorder, path string) {
	t.Helper()
	p := wantProblem(t, w, path, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", w.Header().Get("Retry-After"))
	}
	if !strings.HasSuffix(p.Type, "/rate-limited") {
		t.Errorf("type %s", p.Type)
	}
}

func TestHostileRateLimitPerToken(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore(), func(c *Config) {
		// One request a minute: the bucket does not refill during the test.
		c.RateLimit = RateLimit{TokenRate: 1.0 / 60, TokenBurst: 3, AddressRate: 1.0 / 60, AddressBurst: 1}
	})
	const addr = "198.51.100.7:4000"
	for i := range 3 {
		if w := a.from(t, addr, "/api/v1/openapi.json", viewerToken); w.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, w.Code, w.Body)
		}
	}
	start := time.Now()
	w := a.from(t, addr, "/api/v1/openapi.json", viewerToken)
	wantRateLimited(t, w, "/api/v1/openapi.json")
	// A flooding client waits for its refusal: a few a second per connection.
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("the 429 came after %s, want the refusal pause of 500 ms", took)
	}
	if got := w.Header().Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After %s, want 60 (one request a minute)", got)
	}
	if strings.Contains(w.Body.String(), viewerToken) || strings.Contains(a.logs.String(), viewerToken) {
		t.Error("the token is in the answer or the log")
	}
	// Another token from the same address has its own budget, and so do
	// the address's unauthenticated requests.
	if w := a.from(t, addr, "/api/v1/openapi.json", operatorToken); w.Code != http.StatusOK {
		t.Errorf("another token: %d %s", w.Code, w.Body)
	}
	if w := a.from(t, addr, "/healthz", ""); w.Code != http.StatusOK {
		t.Errorf("the address without a token: %d %s", w.Code, w.Body)
	}
	// The spent token is refused on every route, even a 404.
	wantRateLimited(t, a.from(t, "203.0.113.9:1", "/api/v1/nowhere", viewerToken), "/api/v1/nowhere")
}

func TestHostileRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore(), func(c *Config) {
		c.RateLimit = RateLimit{TokenRate: 1.0 / 60, TokenBurst: 2, AddressRate: 1.0 / 60, AddressBurst: 5, RefusalPause: time.Millisecond}
	})
	const flooder = "198.51.100.7:4000"
	// The open routes and failed authentication share the address's budget.
	for i, path := range []string{"/readyz", "/healthz", "/metrics", "/readyz", "/api/v1/vehicles"} {
		w := a.from(t, flooder, path, map[bool]string{true: "not-a-token"}[path == "/api/v1/vehicles"])
		if want := map[bool]int{true: http.StatusUnauthorized, false: http.StatusOK}[path == "/api/v1/vehicles"]; w.Code != want {
			t.Fatalf("request %d (%s) within the burst: %d %s", i, path, w.Code, w.Body)
		}
	}
	wantRateLimited(t, a.from(t, flooder, "/readyz", ""), "/readyz")
	wantRateLimited(t, a.from(t, flooder, "/api/v1/vehicles", "guessed-token"), "/api/v1/vehicles")
	// The same address with a valid token is not held back by its flood...
	if w := a.from(t, "198.51.100.7:5000", "/api/v1/openapi.json", viewerToken); w.Code != http.StatusOK {
		t.Errorf("a valid token from the flooding address: %d %s", w.Code, w.Body)
	}
	// ...nor is another address.
	if w := a.from(t, "198.51.100.8:4000", "/readyz", ""); w.Code != http.StatusOK {
		t.Errorf("another address: %d %s", w.Code, w.Body)
	}
	// An IPv6 client is one /64: changing the rest of its address does
	// not buy a fresh budget.
	for i := range 5 {
		if w := a.from(t, "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:443", "/healthz", ""); w.Code != http.StatusOK {
			t.Fatalf("IPv6 request %d: %d", i, w.Code)
		}
	}
	wantRateLimited(t, a.from(t, "[2001:db8:1:2:ffff::9]:443", "/healthz", ""), "/healthz")
}

// TestHostileRateLimitAddressesBounded: requests from more addresses than
// MaxAddresses leave at most MaxAddresses buckets; idle addresses are
// forgotten to make room; while every tracked address is busy, the newcomers
// share one bucket instead of each getting a fresh one.
func TestHostileRateLimitAddressesBounded(t *testing.T) {
	t.Parallel()
	b := newBuckets("address", 1, 2, 3) // refills in 2 s
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 100 {
		b.allow(addressKey("192.0.2."+strconv.Itoa(i)+":1"), t0)
	}
	if n := b.size(); n != 3 {
		t.Fatalf("%d addresses tracked, want the cap, 3", n)
	}
	// The 97 others shared the overflow bucket, whose burst of 2 is spent.
	if wait := b.allow(addressKey("192.0.2.200:1"), t0); wait == 0 {
		t.Error("a newcomer while every tracked address is busy got a fresh budget")
	}
	// Once the tracked addresses are idle (their buckets full again), a
	// newcomer takes a place of its own.
	later := t0.Add(3 * time.Second)
	for i := range 2 {
		if wait := b.allow(addressKey("192.0.2.201:1"), later); wait != 0 {
			t.Errorf("request %d of a newcomer after the others went idle: wait %s", i, wait)
		}
	}
	if n := b.size(); n != 1 {
		t.Errorf("%d addresses tracked after the idle ones were swept, want 1", n)
	}
}

func TestHostileReadyzProbesOncePerInterval(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp db.internal:5432: password authentication failed for user \"tms\" (password hunter2)"
	var probes atomic.Int64
	a := newAPI(t, noStore(), func(c *Config) {
		c.Checks = []Check{
			{Name: "postgres", Check: func(context.Context) error { probes.Add(1); return errors.New(secret) }},
			{Name: "kafka", Check: func(context.Context) error { return nil }},
		}
		// This test is about the probe, not the per-address budget.
		c.RateLimit = RateLimit{AddressRate: 1e9, AddressBurst: 1e9}
	})
	const flooders = 16
	var requests atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(2500 * time.Millisecond)
	for range flooders {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				w := a.from(t, "198.51.100.7:4000", "/readyz", "")
				requests.Add(1)
				p := wantProblem(t, w, "/readyz", http.StatusServiceUnavailable)
				if p.Checks["postgres"].Status != "failed" || p.Checks["kafka"].Status != "ok" || !strings.Contains(p.Detail, "postgres") {
					t.Errorf("answer %s: want postgres failed and named, kafka ok", w.Body)
					return
				}
				for _, leak := range []string{"db.internal", "5432", "hunter2", "tms\\\"", "password"} {
					if strings.Contains(w.Body.String(), leak) {
						t.Errorf("the answer leaks %q: %s", leak, w.Body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// One probe at the start, then at most one per second.
	maxProbes := int64(elapsed/time.Second) + 1
	t.Logf("%d requests in %s ran %d probes", requests.Load(), elapsed.Round(time.Millisecond), probes.Load())
	if got := probes.Load(); got < 1 || got > maxProbes {
		t.Errorf("%d probes for %d requests in %s; want 1 to %d", got, requests.Load(), elapsed, maxProbes)
	}
	if n := strings.Count(a.logs.String(), "hunter2"); n != 1 {
		t.Errorf("the failing check's error was logged %d times in %s, want once (then at most once a minute)", n, elapsed)
	}
}
