package g7api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Client asks G7's API for vehicles' past tracks. It is safe for
// concurrent use; its rate limit is shared by every call.
type Client struct {
	cfg     Config
	limiter *rate.Limiter
}

// New validates cfg (zero fields take their defaults) and builds a client.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, limiter: rate.NewLimiter(rate.Limit(cfg.Rate), 1)}, nil
}

// Error is a non-success answer of G7: its envelope, and the HTTP status
// it came with.
type Error struct {
	HTTPStatus int
	Code       string
	SubCode    string
	Msg        string
	SubMsg     string
	ReqID      string
	// Throttled says G7 asked to slow down (HTTP 429 or a throttling
	// code): retried until the retries run out.
	Throttled bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "G7 answered code %s", orNone(e.Code))
	fmt.Fprintf(&b, ", sub_code %s", orNone(e.SubCode))
	if e.Msg != "" || e.SubMsg != "" {
		fmt.Fprintf(&b, " (msg %q, sub_msg %q)", e.Msg, e.SubMsg)
	}
	fmt.Fprintf(&b, ", req_id %s, HTTP %d", orNone(e.ReqID), e.HTTPStatus)
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// envelope is G7's answer around every result.
type envelope struct {
	Code    json.RawMessage `json:"code"`
	Msg     string          `json:"msg"`
	SubCode json.RawMessage `json:"sub_code"`
	SubMsg  string          `json:"sub_msg"`
	ReqID   json.RawMessage `json:"req_id"`
	Data    json.RawMessage `json:"data"`
}

// scalar renders a JSON number or string (or null) as text.
func scalar(v json.RawMessage) string {
	if !present(v) {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return cut(string(v), 64)
}

// success: code 0 and no sub_code other than 0, as the original system
// read it.
func (e *envelope) success() bool {
	code, sub := scalar(e.Code), scalar(e.SubCode)
	return code == "0" && (sub == "" || sub == "0")
}

// Page is one page of a vehicle's history, as History hands it on.
type Page struct {
	// Window is the index of the page's window (from 0) of Windows.
	Window, Windows int
	// Items are the page's rows in fix-time order, without the rows of an
	// earlier page or outside the window. Rows without a usable time
	// come last, rejected.
	Items []Item
	// Until says how far the walk has got: every row with a fix time
	// before it has been handed on. A walk started again from Until
	// misses nothing and repeats nothing.
	Until time.Time
	// Requests is how many HTTP requests the page took, retries included.
	Requests int
}

// Windows returns the windows History asks [from, to) in: consecutive,
// each at most Config.Window long.
func (c *Client) Windows(from, to time.Time) [][2]time.Time {
	var out [][2]time.Time
	for ws := from; ws.Before(to); ws = ws.Add(c.cfg.Window) {
		out = append(out, [2]time.Time{ws, minTime(ws.Add(c.cfg.Window), to)})
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// History walks the track of plate over [from, to), window by window and
// page by page, and hands every page to fn in order; an error from fn
// ends the walk with it. Rows are read as ParseRow reads them, stamped as
// received at the time of their page's request.
//
// The next page of a window is asked for by time: G7's from is to the
// second, so the next request starts at the second of the page's last
// row, and the rows before Until are dropped from its answer. A page with
// fewer than Config.PageSize rows ends its window. G7 answers a page's
// rows from `from` on in time order; a full page that is not, or that is
// all in one second (it would be asked for again forever), is an error.
func (c *Client) History(ctx context.Context, plate string, from, to time.Time, fn func(Page) error) error {
	windows := c.Windows(from, to)
	for wi, w := range windows {
		until := w[0]
		cursor := w[0].Truncate(time.Second)
		for {
			received := c.cfg.Clock()
			raws, requests, err := c.page(ctx, plate, cursor, w[1])
			if err != nil {
				return err
			}
			page := Page{Window: wi, Windows: len(windows), Requests: requests}
			type timed struct {
				at time.Time
				it Item
			}
			var placed []timed
			var unplaced []Item
			last, ordered := time.Time{}, true
			for _, raw := range raws {
				at, ok := timeOf(raw)
				if !ok {
					unplaced = append(unplaced, ParseRow(raw, plate, received))
					continue
				}
				if at.Before(last) {
					ordered = false
				}
				if at.After(last) {
					last = at
				}
				if at.Before(until) || !at.Before(w[1]) {
					continue
				}
				placed = append(placed, timed{at, ParseRow(raw, plate, received)})
			}
			slices.SortStableFunc(placed, func(a, b timed) int { return a.at.Compare(b.at) })
			for _, p := range placed {
				page.Items = append(page.Items, p.it)
			}
			page.Items = append(page.Items, unplaced...)
			full := len(raws) >= c.cfg.PageSize
			switch {
			case full && last.IsZero():
				return fmt.Errorf("g7: history of %s from %s: a full page of %d rows without one usable time: paging by time cannot go on",
					plate, cursor.UTC().Format(time.RFC3339), len(raws))
			case full && !ordered:
				// The next page starts after this one's last row: a full
				// page out of time order could leave rows behind.
				return fmt.Errorf("g7: history of %s from %s: a full page of %d rows out of time order: paging by time cannot trust it",
					plate, cursor.UTC().Format(time.RFC3339), len(raws))
			}
			if full {
				next := last.Truncate(time.Second)
				if !next.After(cursor) {
					return fmt.Errorf("g7: history of %s: a full page of %d rows from %s to %s: more rows in one second than a page holds, "+
						"which paging by time cannot pass", plate, len(raws), cursor.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339Nano))
				}
				if l := last.Add(time.Millisecond); l.After(until) {
					until = minTime(l, w[1])
				}
				cursor = next
			} else {
				until = w[1]
			}
			page.Until = until
			if err := fn(page); err != nil {
				return err
			}
			if !full || !until.Before(w[1]) {
				break
			}
		}
	}
	return nil
}

// g7Time writes a time as G7's from and to take it: China time, to the
// second.
func g7Time(t time.Time) string { return t.In(ChinaTime).Format("2006-01-02 15:04:05") }

// page asks one page: rows of plate from the second of from to to
// (rounded up to the second). It retries what may pass.
func (c *Client) page(ctx context.Context, plate string, from, to time.Time) ([]json.RawMessage, int, error) {
	if r := to.Truncate(time.Second); r.Before(to) {
		to = r.Add(time.Second)
	}
	q := url.Values{"plate_num": {plate}, "from": {g7Time(from)}, "to": {g7Time(to)}}
	if c.cfg.TimeInterval > 0 {
		q.Set("timeInterval", strconv.FormatInt(int64(c.cfg.TimeInterval/time.Second), 10))
	}
	data, requests, err := c.get(ctx, HistoryPath, q)
	if err != nil {
		return nil, requests, fmt.Errorf("g7: history of %s from %s to %s: %w", plate, q.Get("from"), q.Get("to"), err)
	}
	if !present(data) {
		return nil, requests, nil
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, requests, fmt.Errorf("g7: history of %s from %s to %s: data is not an array of rows: %w", plate, q.Get("from"), q.Get("to"), err)
	}
	return rows, requests, nil
}

// get sends a signed GET of path with query and returns the envelope's
// data, retrying with backoff what may pass; requests counts the
// attempts.
func (c *Client) get(ctx context.Context, path string, query url.Values) (data json.RawMessage, requests int, err error) {
	for attempt := 0; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, requests, err
		}
		requests++
		data, retryAfter, err := c.once(ctx, path, query)
		if err == nil {
			return data, requests, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, requests, err
		}
		if attempt >= c.cfg.Retries {
			return nil, requests, fmt.Errorf("gave up after %d attempts: %w", requests, err)
		}
		wait := c.backoff(attempt, retryAfter)
		c.cfg.Logger.Warn("G7 request failed; retrying", "path", path, "attempt", requests, "wait", wait.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, requests, ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is the wait before retry attempt+1: a random time up to
// Backoff x 2^attempt, capped at BackoffMax (full jitter), and no less
// than what G7's Retry-After asked, within BackoffMax.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	bound := c.cfg.BackoffMax
	if attempt < 30 {
		bound = min(c.cfg.Backoff<<attempt, c.cfg.BackoffMax)
	}
	wait := time.Duration(rand.Int64N(int64(bound) + 1))
	return max(wait, min(retryAfter, c.cfg.BackoffMax))
}

// errRetryable marks a failure that may pass.
type errRetryable struct{ err error }

func (e errRetryable) Error() string { return e.err.Error() }
func (e errRetryable) Unwrap() error { return e.err }

func retryable(err error) bool {
	var r errRetryable
	return errors.As(err, &r)
}

// once sends one signed request and reads its answer.
func (c *Client) once(ctx context.Context, path string, query url.Values) (json.RawMessage, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.BaseURL+path+"?"+query.Encode(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build request: %w", err)
	}
	ts := c.cfg.Clock().UnixMilli()
	sts := StringToSign(http.MethodGet, "", "", ts, req.URL.Path, query)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderAuthorization, Authorization(c.cfg.Key, Sign(string(c.cfg.Secret), sts)))
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return nil, 0, err
		}
		return nil, 0, errRetryable{fmt.Errorf("request: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, 0, errRetryable{fmt.Errorf("read the answer (HTTP %d): %w", resp.StatusCode, err)}
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		return nil, 0, fmt.Errorf("the answer (HTTP %d) is larger than G7_API_MAX_RESPONSE_BYTES (%d bytes)", resp.StatusCode, c.cfg.MaxResponseBytes)
	}
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"))
	var env envelope
	jerr := json.Unmarshal(bytes.TrimSpace(body), &env)
	status := resp.StatusCode
	transient := status == http.StatusTooManyRequests || status >= 500
	switch {
	case jerr != nil && status == http.StatusOK:
		return nil, 0, fmt.Errorf("the answer is not G7's JSON envelope: %v (starts %q)", jerr, cut(string(body), 80))
	case jerr != nil:
		e := fmt.Errorf("HTTP %d without G7's envelope (starts %q)", status, cut(string(body), 80))
		if transient {
			return nil, retryAfter, errRetryable{e}
		}
		return nil, 0, e
	case status == http.StatusOK && env.success():
		return env.Data, 0, nil
	}
	ge := &Error{HTTPStatus: status, Code: scalar(env.Code), SubCode: scalar(env.SubCode), Msg: cut(env.Msg, 200),
		SubMsg: cut(env.SubMsg, 200), ReqID: scalar(env.ReqID)}
	ge.Throttled = status == http.StatusTooManyRequests ||
		slices.Contains(c.cfg.ThrottleCodes, ge.Code) || slices.Contains(c.cfg.ThrottleCodes, ge.SubCode)
	if ge.Throttled || transient {
		return nil, retryAfter, errRetryable{ge}
	}
	return nil, 0, ge
}

// parseRetryAfter reads a Retry-After of whole seconds; 0 otherwise.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}
