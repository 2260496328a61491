package g7api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/g7api"
	"github.com/tmsfleet/tms/internal/g7fake"
)

const (
	key    = "test-key"
	secret = "s3cret-Value-7f1c"
	plate  = "沪A12345"
)

func client(t *testing.T, base string, mod func(*g7api.Config)) *g7api.Client {
	t.Helper()
	cfg := g7api.Config{BaseURL: base, Key: key, Secret: secret, Rate: 1000, Backoff: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	c, err := g7api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// walk collects every fix of a History walk, failing on rejections.
func walk(t *testing.T, c *g7api.Client, from, to time.Time) ([]time.Time, []g7api.Page, error) {
	t.Helper()
	var times []time.Time
	var pages []g7api.Page
	err := c.History(t.Context(), plate, from, to, func(p g7api.Page) error {
		for _, it := range p.Items {
			if it.Rejection != nil {
				t.Errorf("rejected: %v", it.Rejection)
				continue
			}
			times = append(times, it.Position.FixTime)
		}
		pages = append(pages, p)
		return nil
	})
	return times, pages, err
}

// checkOnce checks that got holds want's times, each once, in order.
func checkOnce(t *testing.T, got []time.Time, want []g7fake.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d fixes, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i].Time) {
			t.Fatalf("fix %d at %s, want %s", i, got[i], want[i].Time)
		}
	}
}

// A 40-day range is asked in 2 windows of at most 31 days, each in pages
// of 1,000 rows, and every row comes once, in order.
func TestHistoryWindowsAndPages(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(40 * 24 * time.Hour)
	rows := g7fake.Track(from, 2600, 22*time.Minute, 31.2, 121.4) // about 39.7 days
	srv.Add(plate, rows...)
	srv.Add("OTHER", g7fake.Track(from, 10, time.Minute, 30, 120)...)
	c := client(t, srv.URL, nil)
	if w := c.Windows(from, to); len(w) != 2 || w[0][1].Sub(w[0][0]) != 31*24*time.Hour {
		t.Fatalf("windows %v", w)
	}
	got, pages, err := walk(t, c, from, to)
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, got, rows)
	windows := map[time.Time]bool{}
	for _, r := range srv.Requests() {
		if r.To.Sub(r.From) > g7fake.Window {
			t.Errorf("a request over %s: %s to %s", g7fake.Window, r.From, r.To)
		}
		windows[r.To] = true
	}
	if len(windows) != 2 {
		t.Errorf("%d windows asked, want 2", len(windows))
	}
	if last := pages[len(pages)-1]; !last.Until.Equal(to) || last.Window != 1 || last.Windows != 2 {
		t.Errorf("last page: until %s window %d of %d", last.Until, last.Window, last.Windows)
	}
	for _, p := range pages {
		if len(p.Items) > 1000 {
			t.Errorf("a page of %d rows", len(p.Items))
		}
	}
}

// Paging by time loses nothing when a page ends inside a second, and
// repeats nothing.
func TestHistoryPageCutInsideASecond(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	srv.PageSize = 7
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	rows := g7fake.Track(from.Add(300*time.Millisecond), 95, 200*time.Millisecond, 31.2, 121.4)
	srv.Add(plate, rows...)
	c := client(t, srv.URL, func(c *g7api.Config) { c.PageSize = 7 })
	got, _, err := walk(t, c, from, from.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, got, rows)
}

// A walk started again from any page's Until gives the rest, each row
// once: what resuming relies on.
func TestHistoryResumeFromUntil(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)
	rows := g7fake.Track(from, 2500, 2*time.Second, 31.2, 121.4)
	srv.Add(plate, rows...)
	c := client(t, srv.URL, nil)
	stop := errors.New("stop")
	var first []time.Time
	var until time.Time
	err := c.History(t.Context(), plate, from, to, func(p g7api.Page) error {
		for _, it := range p.Items {
			first = append(first, it.Position.FixTime)
		}
		until = p.Until
		return stop
	})
	if !errors.Is(err, stop) || len(first) != 1000 {
		t.Fatalf("err %v after %d rows", err, len(first))
	}
	rest, _, err := walk(t, c, until, to)
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, append(first, rest...), rows)
}

// Throttling (HTTP 429 and G7's throttling envelope) is retried; the
// track comes whole.
func TestHistoryThrottledIsRetried(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	srv.ThrottleEvery = 2
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	rows := g7fake.Track(from, 3500, time.Second, 31.2, 121.4)
	srv.Add(plate, rows...)
	got, pages, err := walk(t, client(t, srv.URL, nil), from, from.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, got, rows)
	throttled, requests := 0, 0
	for _, r := range srv.Requests() {
		if r.Code == 429 {
			throttled++
		}
	}
	for _, p := range pages {
		requests += p.Requests
	}
	if throttled < 2 || requests != len(srv.Requests()) {
		t.Errorf("%d throttled of %d requests; pages counted %d", throttled, len(srv.Requests()), requests)
	}
}

// Retries are bounded: a G7 that always throttles gives an error naming
// its envelope after 1 + Retries requests.
func TestHistoryRetriesAreBounded(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	srv.ThrottleEvery = 1
	c := client(t, srv.URL, func(c *g7api.Config) { c.Retries = 3 })
	_, _, err := walk(t, c, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC))
	var ge *g7api.Error
	if !errors.As(err, &ge) || !ge.Throttled || ge.Code != "429" {
		t.Fatalf("err %v", err)
	}
	if n := len(srv.Requests()); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}

// A wrong secret is G7's error, named by code, sub_code, msg and req_id,
// not retried, and the secret is nowhere in it.
func TestHistoryWrongSecret(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	var logs bytes.Buffer
	c := client(t, srv.URL, func(c *g7api.Config) {
		c.Secret = "wrong-secret-d00d"
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	_, _, err := walk(t, c, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC))
	var ge *g7api.Error
	if !errors.As(err, &ge) || ge.Code != "401" || ge.SubCode != "invalid_signature" || ge.ReqID == "" || ge.HTTPStatus != 401 {
		t.Fatalf("err %#v", err)
	}
	for _, want := range []string{"401", "invalid_signature", "signature mismatch", "req_id " + ge.ReqID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error()+logs.String(), "wrong-secret-d00d") {
		t.Error("the secret is in the error or the logs")
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests: a refused signature is not retried", n)
	}
}

// Network errors and 5xx are retried; a body over the limit is an error.
func TestHistoryNetworkErrorsAndLimits(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1: // the connection drops
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case 2:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default:
			fmt.Fprint(w, `{"code":0,"msg":"succ","sub_code":0,"req_id":"9","data":[{"lng":"121.5","lat":"31.2","speed":3,"course":1,"time":1780000000000}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	from := time.UnixMilli(1780000000000).Add(-time.Minute)
	got, _, err := walk(t, client(t, srv.URL, nil), from, from.Add(time.Hour))
	if err != nil || len(got) != 1 || calls.Load() != 3 {
		t.Fatalf("got %d fixes after %d calls: %v", len(got), calls.Load(), err)
	}
	c := client(t, srv.URL, func(c *g7api.Config) { c.MaxResponseBytes = 1024 })
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"code":0,"data":[`+strings.Repeat(`{"lng":"1","lat":"1","time":1780000000000},`, 100)+`{}]}`)
	}))
	t.Cleanup(big.Close)
	c = client(t, big.URL, func(c *g7api.Config) { c.MaxResponseBytes = 1024 })
	if _, _, err := walk(t, c, from, from.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "G7_API_MAX_RESPONSE_BYTES") {
		t.Fatalf("err %v", err)
	}
}

// The secret never prints: not in a Config formatted any way, nor logged.
func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := g7api.Config{Key: key, Secret: secret}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg, "secret", cfg.Secret)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "secret", cfg.Secret)
	out := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Secret) + logs.String()
	if strings.Contains(out, secret) {
		t.Fatalf("the secret printed: %s", out)
	}
	if _, err := g7api.New(g7api.Config{BaseURL: "ftp://x", Key: key, Secret: secret, Rate: -1}); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("a config error: %v", err)
	}
	_, err := g7api.New(g7api.Config{})
	if err == nil || !strings.Contains(err.Error(), "G7_API_KEY") || !strings.Contains(err.Error(), "G7_API_SECRET") {
		t.Fatalf("missing credentials: %v", err)
	}
}

// A canceled context ends a walk at once, without retrying.
func TestHistoryCanceled(t *testing.T) {
	t.Parallel()
	srv := g7fake.New(t, key, secret)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := client(t, srv.URL, nil).History(ctx, plate, time.Now().Add(-time.Hour), time.Now(), func(g7api.Page) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// Paging by time relies on G7's order: a full page out of time order is
// an error, not a page left half read.
func TestHistoryFullPageOutOfOrder(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"code":0,"sub_code":0,"req_id":"1","data":[{"lng":"121.5","lat":"31.2","time":1780000060000},{"lng":"121.5","lat":"31.2","time":1780000000000}]}`)
	}))
	t.Cleanup(srv.Close)
	from := time.UnixMilli(1780000000000).Add(-time.Minute)
	_, _, err := walk(t, client(t, srv.URL, func(c *g7api.Config) { c.PageSize = 2 }), from, from.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "out of time order") {
		t.Fatalf("err %v", err)
	}
}
