// Package g7fake is a G7 open API for tests, written from the contract
// tms codes against (docs/backfill.md, /work's G7 notes): it checks every
// request's signature and rejects a wrong one with G7's error envelope,
// answers history_location in pages of at most PageSize rows by time, and
// throttles now and then (HTTP 429, or the throttling envelope with HTTP
// 200), so that a client must sign, page and retry right to get a track
// whole. It computes the string to sign on its own, from the request as
// received, rather than with the client's code.
package g7fake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Path is history_location's path.
const Path = "/v1/device/truck/history_location"

// Window is the longest range the server answers.
const Window = 31 * 24 * time.Hour

var china = time.FixedZone("CST", 8*60*60)

// Row is a history row: a fix at Time.
type Row struct {
	Time time.Time
	// Raw is the row as sent; Fix builds it from a fix.
	Raw json.RawMessage
}

// Fix builds the row of a valid fix, lng and lat as strings as G7 sends
// them.
func Fix(at time.Time, lat, lng, speed, course float64) Row {
	raw := fmt.Sprintf(`{"lng":"%.7f","lat":"%.7f","speed":%g,"course":%g,"time":%d,"distance":0}`, lng, lat, speed, course, at.UnixMilli())
	return Row{Time: at.UTC(), Raw: json.RawMessage(raw)}
}

// Track is n fixes from start, one every step, moving north-east from
// (lat, lng) in steps of about 60 m, back to the start every 100 fixes.
func Track(start time.Time, n int, step time.Duration, lat, lng float64) []Row {
	rows := make([]Row, n)
	for i := range n {
		d := 0.0005 * float64(i%100)
		rows[i] = Fix(start.Add(time.Duration(i)*step), lat+d, lng+d, 36, 45)
	}
	return rows
}

// Request is what the server saw of one request.
type Request struct {
	Plate    string
	From, To time.Time
	// Status is the HTTP status answered; Code the envelope's code.
	Status int
	Code   int
	Rows   int
}

// Server is a running fake G7.
type Server struct {
	*httptest.Server
	// Key and Secret are the credentials it accepts.
	Key, Secret string
	// PageSize is the most rows of a page. Default 1000.
	PageSize int
	// ThrottleEvery, when positive, makes every ThrottleEvery-th
	// correctly signed request a throttling answer: HTTP 429 and the
	// envelope with code 429 in turn.
	ThrottleEvery int

	mu       sync.Mutex
	tracks   map[string][]Row
	requests []Request
	signed   int
	// served counts the pages of rows answered; from holdAt on, requests
	// wait for release (Hold).
	served  int
	holdAt  int
	release chan struct{}
}

// Hold makes the server answer n more pages of rows, then hold every
// request until Release (or until its client goes away): a backfill
// stopped in the middle, at a known place.
func (s *Server) Hold(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdAt, s.release = s.served+n, make(chan struct{})
}

// Release lets held requests through, and stops holding.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.release != nil {
		close(s.release)
		s.release = nil
	}
}

// Served returns how many pages of rows the server has answered.
func (s *Server) Served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// New starts a server that accepts key and secret, closed when the test
// ends.
func New(t testing.TB, key, secret string) *Server {
	s := &Server{Key: key, Secret: secret, PageSize: 1000, tracks: map[string][]Row{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Add adds rows to plate's track.
func (s *Server) Add(plate string, rows ...Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := append(s.tracks[plate], rows...)
	sort.SliceStable(tr, func(i, j int) bool { return tr[i].Time.Before(tr[j].Time) })
	s.tracks[plate] = tr
}

// Requests returns the requests so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

type envelope struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	SubCode any    `json:"sub_code"`
	SubMsg  any    `json:"sub_msg"`
	ReqID   string `json:"req_id"`
	Data    any    `json:"data"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if held := s.release; held != nil && s.served >= s.holdAt {
		s.mu.Unlock()
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	q := r.URL.Query()
	req := Request{Plate: q.Get("plate_num")}
	req.From, _ = time.ParseInLocation("2006-01-02 15:04:05", q.Get("from"), china)
	req.To, _ = time.ParseInLocation("2006-01-02 15:04:05", q.Get("to"), china)
	answer := func(status int, e envelope) {
		e.ReqID = strconv.Itoa(len(s.requests) + 1000)
		req.Status, req.Code = status, e.Code
		s.requests = append(s.requests, req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(e)
	}
	if msg := s.verify(r); msg != "" {
		answer(http.StatusUnauthorized, envelope{Code: 401, Msg: "unauthorized", SubCode: "invalid_signature", SubMsg: msg})
		return
	}
	s.signed++
	if s.ThrottleEvery > 0 && s.signed%s.ThrottleEvery == 0 {
		if (s.signed/s.ThrottleEvery)%2 == 1 {
			answer(http.StatusTooManyRequests, envelope{Code: 429, Msg: "too many requests", SubCode: 429})
		} else {
			answer(http.StatusOK, envelope{Code: 429, Msg: "api access frequency exceeded", SubCode: 429})
		}
		return
	}
	switch {
	case r.Method != http.MethodGet || r.URL.Path != Path:
		answer(http.StatusNotFound, envelope{Code: 404, Msg: "no such api"})
		return
	case req.Plate == "" || req.From.IsZero() || req.To.IsZero() || !req.From.Before(req.To):
		answer(http.StatusOK, envelope{Code: 400, Msg: "bad parameters", SubCode: "invalid_param", SubMsg: "plate_num, from, to"})
		return
	case req.To.Sub(req.From) > Window:
		answer(http.StatusOK, envelope{Code: 400, Msg: "bad parameters", SubCode: "invalid_param", SubMsg: "the range is longer than 31 days"})
		return
	}
	var data []json.RawMessage
	for _, row := range s.tracks[req.Plate] {
		if row.Time.Before(req.From) || row.Time.After(req.To) {
			continue
		}
		if len(data) == s.PageSize {
			break
		}
		data = append(data, row.Raw)
	}
	req.Rows = len(data)
	s.served++
	answer(http.StatusOK, envelope{Code: 0, Msg: "succ", SubCode: 0, Data: data})
}

// verify checks r's signature against the contract; "" when it is right.
func (s *Server) verify(r *http.Request) string {
	ts := r.Header.Get("X-G7-OpenAPI-Timestamp")
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "X-G7-OpenAPI-Timestamp is missing or not epoch milliseconds"
	}
	if d := time.Since(time.UnixMilli(ms)); d > 15*time.Minute || d < -15*time.Minute {
		return "the timestamp is more than 15 minutes off"
	}
	auth := r.Header.Get("Authorization")
	key, sig, ok := strings.Cut(strings.TrimPrefix(auth, "g7ac "), ":")
	if !strings.HasPrefix(auth, "g7ac ") || !ok {
		return "Authorization is not g7ac <key>:<signature>"
	}
	if key != s.Key {
		return "unknown key"
	}
	// METHOD \n Content-MD5 \n Content-Type \n timestamp \n path?sorted k=v
	q := r.URL.Query()
	var keys []string
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			pairs = append(pairs, k+"="+v)
		}
	}
	resource := r.URL.Path
	if len(pairs) > 0 {
		resource += "?" + strings.Join(pairs, "&")
	}
	sts := strings.Join([]string{r.Method, r.Header.Get("Content-MD5"), r.Header.Get("Content-Type"), ts, resource}, "\n")
	mac := hmac.New(sha256.New, []byte(s.Secret))
	mac.Write([]byte(sts))
	if !hmac.Equal([]byte(sig), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
		return "signature mismatch"
	}
	return ""
}
