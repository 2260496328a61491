package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// api is the simulator's client of the tms API: it defines the area's
// sites as stations and creates the fleet's jobs, as an operator would.
// The token goes into the Authorization header and nowhere else: no log
// line, no error carries it.
type api struct {
	base     string
	token    string
	client   *http.Client
	log      *slog.Logger
	attempts int
	timeout  time.Duration
	workers  int
}

func newAPI(cfg *Config, log *slog.Logger) *api {
	return &api{
		base:     strings.TrimRight(cfg.APIURL, "/"),
		token:    cfg.APIToken,
		client:   &http.Client{},
		log:      log.With("api", redact(cfg.APIURL)),
		attempts: cfg.APIAttempts,
		timeout:  cfg.APITimeout,
		workers:  cfg.APIConcurrency,
	}
}

// Backoff between attempts when the API gives no Retry-After: from
// backoffMin, doubling, at most backoffMax. A Retry-After is honoured up
// to retryAfterMax.
const (
	backoffMin    = 500 * time.Millisecond
	backoffMax    = 8 * time.Second
	retryAfterMax = 30 * time.Second
)

// errUnreachable is a request that never got an answer.
var errUnreachable = errors.New("no answer from the API")

// response is an API answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem is what an error answer says (RFC 9457), for the log.
func (r response) problem() string {
	var p struct {
		Detail string `json:"detail"`
		Errors []struct {
			Field  string `json:"field"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.body, &p) != nil {
		return strings.TrimSpace(string(r.body[:min(len(r.body), 300)]))
	}
	out := p.Detail
	for _, e := range p.Errors {
		out += "; " + e.Field + ": " + e.Detail
	}
	return out
}

// do sends a request and reads the answer. A 429 or 503 (the API is
// busy, starting or shedding load) and a request that got no answer are
// tried again, up to attempts in all, after the Retry-After the API gives
// or a doubling backoff. Every request do sends may be repeated: station
// writes carry their preconditions, and a job's external reference makes
// its create idempotent.
func (a *api) do(ctx context.Context, method, path string, header http.Header, body any) (response, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return response{}, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	wait := backoffMin
	for attempt := 1; ; attempt++ {
		res, err := a.once(ctx, method, path, header, payload)
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		retry := err != nil || res.status == http.StatusTooManyRequests || res.status == http.StatusServiceUnavailable
		if !retry {
			return res, nil
		}
		if attempt >= a.attempts {
			if err != nil {
				return response{}, fmt.Errorf("%s %s: %w after %d attempts: %w", method, path, errUnreachable, attempt, err)
			}
			return res, nil
		}
		pause := wait
		if err == nil {
			if after, ok := retryAfter(res.header.Get("Retry-After"), time.Now()); ok {
				pause = min(after, retryAfterMax)
			}
			a.log.Debug("API busy; trying again", "method", method, "path", path, "status", res.status, "in", pause)
		} else {
			a.log.Debug("API did not answer; trying again", "method", method, "path", path, "err", err, "in", pause)
		}
		select {
		case <-ctx.Done():
			return response{}, ctx.Err()
		case <-time.After(pause):
		}
		wait = min(2*wait, backoffMax)
	}
}

// once sends one request, bounded by the API timeout.
func (a *api) once(ctx context.Context, method, path string, header http.Header, payload []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return response{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// A *url.Error names the URL, which holds no token; the error is
		// unwrapped to keep log lines short.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// reachable asks /healthz whether anything answers at the API's
// address: once, or, with wait, until it does (`make run` may still be
// starting) for as many attempts as any request.
func (a *api) reachable(ctx context.Context, wait bool) error {
	var res response
	var err error
	if wait {
		res, err = a.do(ctx, http.MethodGet, "/healthz", nil, nil)
	} else {
		res, err = a.once(ctx, http.MethodGet, "/healthz", nil, nil)
	}
	if err != nil {
		return err
	}
	if res.status >= 500 {
		return fmt.Errorf("/healthz answered %d", res.status)
	}
	return nil
}

// errRefused is an API that will not take the simulator's writes at all
// (a wrong or read-only token): nothing more is tried.
var errRefused = errors.New("the API refused the token")

// refused turns a 401 or 403 into errRefused.
func refused(res response) error {
	if res.status == http.StatusUnauthorized || res.status == http.StatusForbidden {
		return fmt.Errorf("%w (%d: %s); give an operator token: --token, TMS_API_TOKENS or $TMS_DATA_DIR/api-tokens/operator",
			errRefused, res.status, res.problem())
	}
	return nil
}

// stationJSON is a station definition, as PUT /api/v1/stations/{id}
// takes it and GET answers it (only the fields compared).
type stationJSON struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	CoordSystem string          `json:"coord_system"`
	Geometry    pointJSON       `json:"geometry"`
	RadiusM     float64         `json:"radius_m"`
	Detection   json.RawMessage `json:"detection,omitempty"`
	Original    json.RawMessage `json:"original_geometry,omitempty"`
}

type pointJSON struct {
	Type        string     `json:"type"`
	Coordinates [2]float64 `json:"coordinates"`
}

// siteStation is site i of area as a station: a circle around it.
func siteStation(area Area, i int) stationJSON {
	s := area.Sites[i]
	return stationJSON{
		Name: s.Name, Type: string(s.Kind), CoordSystem: "wgs84",
		Geometry: pointJSON{Type: "Point", Coordinates: [2]float64{round7(s.Lng), round7(s.Lat)}},
		RadiusM:  area.StationRadius(),
	}
}

func round7(x float64) float64 { return math.Round(x*1e7) / 1e7 }

// sameStation reports whether the station as stored is the one the site
// defines: same name, type, centre (to 7 decimals) and radius, in WGS84,
// without detection overrides.
func sameStation(want stationJSON, got stationJSON) bool {
	noOverrides := len(got.Detection) == 0 || string(bytes.Join(bytes.Fields(got.Detection), nil)) == "{}"
	return got.Name == want.Name && got.Type == want.Type && got.CoordSystem == want.CoordSystem &&
		got.Geometry.Type == want.Geometry.Type &&
		math.Abs(got.Geometry.Coordinates[0]-want.Geometry.Coordinates[0]) < 5e-8 &&
		math.Abs(got.Geometry.Coordinates[1]-want.Geometry.Coordinates[1]) < 5e-8 &&
		math.Abs(got.RadiusM-want.RadiusM) < 1e-6 && noOverrides && len(got.Original) == 0
}

// stationOutcome is what defining one station did.
type stationOutcome string

const (
	stationCreated   stationOutcome = "created"
	stationUnchanged stationOutcome = "unchanged"
	stationReplaced  stationOutcome = "replaced"
	stationFailed    stationOutcome = "failed"
)

// maxStationRounds bounds the create, read, replace rounds of one
// station racing another writer.
const maxStationRounds = 3

// defineStation makes site i's station what the site defines, without
// touching one that already is: PUT with If-None-Match: * creates it; if
// it exists (412), GET reads it, and a station of another definition is
// replaced with If-Match: its ETag, so that a concurrent edit is not
// overwritten unseen (another 412 starts the round again).
func (a *api) defineStation(ctx context.Context, area Area, i int) (stationOutcome, error) {
	id := area.StationID(i)
	want := siteStation(area, i)
	path := "/api/v1/stations/" + url.PathEscape(id)
	log := a.log.With("station", id)
	for range maxStationRounds {
		res, err := a.do(ctx, http.MethodPut, path, http.Header{"If-None-Match": {"*"}}, want)
		if err != nil {
			return stationFailed, err
		}
		if err := refused(res); err != nil {
			return stationFailed, err
		}
		switch res.status {
		case http.StatusCreated, http.StatusOK, http.StatusAccepted:
			log.Debug("station created", "status", res.status)
			return stationCreated, nil
		case http.StatusPreconditionFailed:
		default:
			log.Warn("station not created", "status", res.status, "problem", res.problem())
			return stationFailed, nil
		}
		res, err = a.do(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return stationFailed, err
		}
		if res.status == http.StatusNotFound {
			continue // deleted meanwhile, or not yet in the read model
		}
		var got stationJSON
		if res.status != http.StatusOK || json.Unmarshal(res.body, &got) != nil {
			log.Warn("station exists but could not be read", "status", res.status, "problem", res.problem())
			return stationFailed, nil
		}
		if sameStation(want, got) {
			return stationUnchanged, nil
		}
		res, err = a.do(ctx, http.MethodPut, path, http.Header{"If-Match": {res.header.Get("ETag")}}, want)
		if err != nil {
			return stationFailed, err
		}
		switch res.status {
		case http.StatusOK, http.StatusCreated, http.StatusAccepted:
			log.Info("station had another definition; replaced with the site's", "status", res.status)
			return stationReplaced, nil
		case http.StatusPreconditionFailed:
			continue // changed since it was read
		}
		log.Warn("station not replaced", "status", res.status, "problem", res.problem())
		return stationFailed, nil
	}
	log.Warn("station keeps changing under the simulator; left as it is", "rounds", maxStationRounds)
	return stationFailed, nil
}

// defineStations defines every site of area as a station, a few at once,
// and logs what it did. It returns an error only when the API refuses
// the token or does not answer: then nothing else would work either.
func (a *api) defineStations(ctx context.Context, area Area) error {
	outcomes := make([]stationOutcome, len(area.Sites))
	errs := make([]error, len(area.Sites))
	a.each(ctx, len(area.Sites), func(ctx context.Context, i int) error {
		outcomes[i], errs[i] = a.defineStation(ctx, area, i)
		return errs[i]
	})
	counts := map[stationOutcome]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	a.log.Info("stations defined for the area's sites", "area", area.Name, "created", counts[stationCreated],
		"unchanged", counts[stationUnchanged], "replaced", counts[stationReplaced], "failed", counts[stationFailed],
		"radius_m", area.StationRadius())
	return errors.Join(errs...)
}

// each runs fn for 0..n-1, at most a.workers at once; the first error
// cancels the calls not yet begun.
func (a *api) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, a.workers)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if fn(ctx, i) != nil {
				cancel()
			}
		})
	}
	wg.Wait()
}

// jobRequest is POST /api/v1/jobs's body.
type jobRequest struct {
	Vehicle     string        `json:"vehicle"`
	ExternalRef string        `json:"external_ref"`
	NewVehicle  bool          `json:"new_vehicle"`
	Cargo       cargoJSON     `json:"cargo"`
	Stops       []jobStopJSON `json:"stops"`
}

type cargoJSON struct {
	WeightKg    float64 `json:"weight_kg"`
	Description string  `json:"description"`
}

type jobStopJSON struct {
	StationID string `json:"station_id"`
	Kind      string `json:"kind"`
}

// jobOutcome is what creating one job did.
type jobOutcome string

const (
	jobCreated  jobOutcome = "created"
	jobExisted  jobOutcome = "existed"
	jobAccepted jobOutcome = "accepted"
	jobConflict jobOutcome = "conflict"
	jobFailed   jobOutcome = "failed"
	// jobUnanswered: the run ended (or the API refused the token) before
	// the create was answered, or sent.
	jobUnanswered jobOutcome = "unanswered"
)

// createJob creates j: new_vehicle, since the simulator's plates may
// never have reported yet, and its external reference, so that a second
// run repeats rather than duplicates it.
func (a *api) createJob(ctx context.Context, j Job) (jobOutcome, error) {
	req := jobRequest{Vehicle: j.Plate, ExternalRef: j.ExternalRef, NewVehicle: true,
		Cargo: cargoJSON{WeightKg: j.CargoKg, Description: j.Cargo}}
	for _, s := range j.Stops {
		req.Stops = append(req.Stops, jobStopJSON{StationID: s.StationID, Kind: string(s.Kind)})
	}
	log := a.log.With("job", j.Index, "external_ref", j.ExternalRef, "vehicle", j.Plate)
	res, err := a.do(ctx, http.MethodPost, "/api/v1/jobs", nil, req)
	if err != nil {
		if ctx.Err() != nil {
			return jobUnanswered, err
		}
		log.Error("job not created", "err", err)
		return jobFailed, err
	}
	if err := refused(res); err != nil {
		return jobFailed, err
	}
	var answer struct {
		ID     string `json:"id"`
		JobID  string `json:"job_id"`
		Status string `json:"status"`
	}
	_ = json.Unmarshal(res.body, &answer)
	switch res.status {
	case http.StatusCreated:
		log.Info("job created", "id", answer.ID, "status", answer.Status, "stops", len(j.Stops))
		return jobCreated, nil
	case http.StatusOK:
		log.Info("job exists already (created by an earlier run)", "id", answer.ID, "status", answer.Status)
		return jobExisted, nil
	case http.StatusAccepted:
		log.Info("job accepted; the read model does not show it yet", "id", answer.JobID)
		return jobAccepted, nil
	case http.StatusConflict:
		log.Warn("a job with this external reference exists with other content (another fleet size, area or seed?); skipped",
			"problem", res.problem())
		return jobConflict, nil
	}
	log.Error("job not created", "status", res.status, "problem", res.problem())
	return jobFailed, nil
}

// createJobs creates the jobs: one vehicle's in their order (the API
// queues a vehicle's second job behind its first by creation time),
// different vehicles' a few at once. It logs a summary when done or when
// ctx ends.
func (a *api) createJobs(ctx context.Context, jobs []Job) {
	var byVehicle [][]Job
	index := map[int]int{}
	for _, j := range jobs {
		k, ok := index[j.Vehicle]
		if !ok {
			k = len(byVehicle)
			index[j.Vehicle] = k
			byVehicle = append(byVehicle, nil)
		}
		byVehicle[k] = append(byVehicle[k], j)
	}
	outcomes := make([]jobOutcome, len(jobs))
	for i := range outcomes {
		outcomes[i] = jobUnanswered
	}
	began := time.Now()
	a.each(ctx, len(byVehicle), func(ctx context.Context, k int) error {
		for _, j := range byVehicle[k] {
			o, err := a.createJob(ctx, j)
			outcomes[j.Index] = o
			if errors.Is(err, errRefused) {
				a.log.Error("jobs not created", "err", err)
				return err
			}
			if err != nil {
				return nil // logged: the API does not answer, and this vehicle's later jobs are not tried
			}
		}
		return nil
	})
	counts := map[jobOutcome]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	attrs := []any{"jobs", len(jobs), "created", counts[jobCreated], "existed", counts[jobExisted],
		"accepted", counts[jobAccepted], "conflicts", counts[jobConflict], "failed", counts[jobFailed],
		"took", time.Since(began).Round(time.Millisecond)}
	if n := counts[jobUnanswered]; n > 0 {
		attrs = append(attrs, "unanswered", n)
	}
	a.log.Info("jobs created through the API", attrs...)
}
