package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/jobtest"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/projector"
)

// fakeJobCommands answers with what a test sets, and keeps what it was
// asked.
type fakeJobCommands struct {
	mu      sync.Mutex
	creates []job.CreateRequest
	cancels [][2]string
	res     jobcmd.Result
	err     error
}

func (f *fakeJobCommands) Create(_ context.Context, r job.CreateRequest) (jobcmd.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, r)
	return f.res, f.err
}

func (f *fakeJobCommands) Cancel(_ context.Context, id, reason string) (jobcmd.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels = append(f.cancels, [2]string{id, reason})
	return f.res, f.err
}

const jobBody = `{"vehicle": "沪a00001", "external_ref": "ORD-1", "new_vehicle": true,
	"cargo": {"weight_kg": 20000, "description": "gravel"},
	"stops": [{"station_id": "L", "kind": "loading", "planned_arrival": "2025-03-10T16:30:00+08:00"},
	          {"station_id": "U1", "kind": "unloading", "planned_arrival": null}]}`

var aJob = jobs.Job{ID: job.IDFor("ORD-1"), Vehicle: "沪A00001", ExternalRef: "ORD-1", Status: job.StatusQueued,
	Cargo: job.Cargo{WeightKg: 20000}, Stops: []job.StopProgress{}, CreatedAt: base, UpdatedAt: base}

// TestJobRequests: bodies are read strictly, every problem named by its
// JSON path; what the command answers becomes the documented status.
func TestJobRequests(t *testing.T) {
	t.Parallel()
	newFake := func(t *testing.T, res jobcmd.Result, err error) (*testAPI, *fakeJobCommands) {
		f := &fakeJobCommands{res: res, err: err}
		return newAPI(t, noStore(), func(c *Config) { c.JobCommands = f }), f
	}

	t.Run("a request is read as given", func(t *testing.T) {
		t.Parallel()
		a, f := newFake(t, jobcmd.Result{JobID: aJob.ID, Created: true, Job: &aJob}, nil)
		w := a.write(t, http.MethodPost, "/api/v1/jobs", jobBody)
		got := decodeStatus[jobJSON](t, w, http.StatusCreated)
		wantHeader(t, w, "Location", "/api/v1/jobs/"+aJob.ID)
		if got.ID != aJob.ID || got.Status != job.StatusQueued {
			t.Errorf("answer %s", w.Body)
		}
		r := f.creates[0]
		planned := time.Date(2025, 3, 10, 8, 30, 0, 0, time.UTC)
		if r.Vehicle != "沪a00001" || r.ExternalRef != "ORD-1" || !r.NewVehicle || r.Cargo != (job.Cargo{WeightKg: 20000, Description: "gravel"}) ||
			len(r.Stops) != 2 || r.Stops[0].StationID != "L" || r.Stops[0].Kind != "loading" || !r.Stops[0].PlannedArrival.Equal(planned) ||
			r.Stops[1].PlannedArrival != nil {
			t.Errorf("request %+v", r)
		}
	})

	t.Run("the command's answers", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name   string
			res    jobcmd.Result
			err    error
			status int
			fields []string
		}{
			{"a repeat", jobcmd.Result{JobID: aJob.ID, Job: &aJob}, nil, http.StatusOK, nil},
			{"accepted", jobcmd.Result{JobID: aJob.ID, EventID: "e0f4c4a8-8a0b-5f6c-9a53-32b5a3c9e001", Created: true, Accepted: true}, nil, http.StatusAccepted, nil},
			{"invalid", jobcmd.Result{}, &job.ValidationError{Fields: []job.FieldError{{Field: "vehicle", Detail: "no"}, {Field: "stops[1].station_id", Detail: "no"}}},
				http.StatusBadRequest, []string{"vehicle", "stops[1].station_id"}},
			{"a conflict", jobcmd.Result{}, fmt.Errorf("%w: other stops", job.ErrConflict), http.StatusConflict, []string{"external_ref"}},
			{"unavailable", jobcmd.Result{}, fmt.Errorf("%w: slow", jobcmd.ErrUnavailable), http.StatusServiceUnavailable, nil},
		}
		for _, c := range cases {
			a, _ := newFake(t, c.res, c.err)
			w := a.write(t, http.MethodPost, "/api/v1/jobs", jobBody)
			switch c.status {
			case http.StatusOK:
				decodeStatus[jobJSON](t, w, http.StatusOK)
				wantHeader(t, w, "Location", "")
			case http.StatusAccepted:
				got := decodeStatus[map[string]any](t, w, http.StatusAccepted)
				wantHeader(t, w, "Location", "/api/v1/jobs/"+aJob.ID)
				if got["status"] != "accepted" || got["job_id"] != aJob.ID || got["event_id"] != c.res.EventID {
					t.Errorf("%s: %s", c.name, w.Body)
				}
			default:
				wantProblem(t, w, "/api/v1/jobs", c.status, c.fields...)
			}
		}
		a, _ := newFake(t, jobcmd.Result{JobID: aJob.ID, Accepted: true}, nil)
		got := decodeStatus[map[string]any](t, a.write(t, http.MethodPost, "/api/v1/jobs", jobBody), http.StatusAccepted)
		if v, ok := got["event_id"]; !ok || v != nil {
			t.Errorf("a repeat accepted: event_id %v, want null", v)
		}
	})

	t.Run("every bad field is named", func(t *testing.T) {
		t.Parallel()
		a, f := newFake(t, jobcmd.Result{}, errors.New("not reached"))
		cases := []struct {
			body   string
			fields []string
		}{
			{`[]`, []string{"body"}},
			{`{}`, []string{"vehicle", "cargo", "stops"}},
			{`{"vehicle": 7, "external_ref": [], "new_vehicle": "yes", "cargo": {"weight_kg": "20t", "description": 1, "volume": 3},
				"stops": [{"station_id": null, "kind": 1, "planned_arrival": "tomorrow", "note": ""}, 5], "driver": "x"}`,
				[]string{"vehicle", "external_ref", "new_vehicle", "cargo.weight_kg", "cargo.description", "cargo.volume",
					"stops[0].station_id", "stops[0].kind", "stops[0].planned_arrival", "stops[0].note", "stops[1]", "driver"}},
			{`{"vehicle": "沪A1", "cargo": null, "stops": {}}`, []string{"cargo", "stops"}},
			{`{"vehicle": "沪A1", "cargo": {"weight_kg": 1e999}, "stops": []}`, []string{"cargo.weight_kg", "stops"}},
			// The shape's problems, and those of the values that need no
			// read model, in one 400.
			{`{"vehicle": "x!", "cargo": {"weight_kg": "20t"}, "stops": [{"station_id": "L", "kind": "drop"}], "driver": 1}`,
				[]string{"cargo.weight_kg", "driver", "vehicle", "stops"}},
			{`{"vehicle": "沪A1", "external_ref": " ", "cargo": {"weight_kg": 300000}, "stops": [{"station_id": "L", "kind": "unloading"},
				{"station_id": "U1", "kind": "loading", "planned_arrival": "soon"}]}`,
				[]string{"stops[1].planned_arrival", "cargo.weight_kg", "stops[0].kind", "stops[1].kind"}},
			{`{"vehicle": "沪A1", "cargo": {"weight_kg": 1}, "stops": [` + strings.Repeat(`{"station_id": "L", "kind": "loading"},`, 50) +
				`{"station_id": "U1", "kind": "unloading"}]}`, []string{"stops"}},
			{`{"Vehicle": "沪A1", "vehicle": "沪A1", "cargo": {"weight_kg": 1}, "stops": []}`, []string{"Vehicle", "stops"}},
		}
		for _, c := range cases {
			wantProblem(t, a.write(t, http.MethodPost, "/api/v1/jobs", c.body), "/api/v1/jobs", http.StatusBadRequest, c.fields...)
		}
		if len(f.creates) != 0 {
			t.Errorf("%d invalid bodies reached the commands", len(f.creates))
		}
	})

	t.Run("bodies: media type, size, role", func(t *testing.T) {
		t.Parallel()
		a, f := newFake(t, jobcmd.Result{}, errors.New("not reached"))
		wantProblem(t, a.send(t, http.MethodPost, "/api/v1/jobs", operatorToken, "text/plain", jobBody), "/api/v1/jobs", http.StatusUnsupportedMediaType)
		huge := `{"vehicle": "沪A1", "cargo": {"weight_kg": 1, "description": "` + strings.Repeat("x", maxJobBody) + `"}, "stops": []}`
		wantProblem(t, a.write(t, http.MethodPost, "/api/v1/jobs", huge), "/api/v1/jobs", http.StatusRequestEntityTooLarge)
		wantProblem(t, a.send(t, http.MethodPost, "/api/v1/jobs", viewerToken, "application/json", jobBody), "/api/v1/jobs", http.StatusForbidden)
		path := "/api/v1/jobs/" + aJob.ID + "/cancel"
		wantProblem(t, a.send(t, http.MethodPost, path, viewerToken, "application/json", `{"reason": "x"}`), path, http.StatusForbidden)
		if len(f.creates)+len(f.cancels) != 0 {
			t.Errorf("refused requests reached the commands")
		}
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		path := "/api/v1/jobs/" + strings.ToUpper(aJob.ID) + "/cancel"
		cancelled := aJob
		cancelled.Status = job.StatusCancelled
		a, f := newFake(t, jobcmd.Result{JobID: aJob.ID, Job: &cancelled}, nil)
		got := decodeStatus[jobJSON](t, a.write(t, http.MethodPost, path, `{"reason": "customer called"}`), http.StatusOK)
		if got.Status != job.StatusCancelled || f.cancels[0] != [2]string{aJob.ID, "customer called"} {
			t.Errorf("cancelled %+v, asked %v", got, f.cancels)
		}
		wantProblem(t, a.write(t, http.MethodPost, "/api/v1/jobs/nope/cancel", `{"reason": 1, "why": ""}`),
			"/api/v1/jobs/nope/cancel", http.StatusBadRequest, "id", "reason", "why")
		wantProblem(t, a.write(t, http.MethodPost, path, `{}`), path, http.StatusBadRequest, "reason")
		wantProblem(t, a.write(t, http.MethodPost, "/api/v1/jobs/nope/cancel", `{"reason": " "}`),
			"/api/v1/jobs/nope/cancel", http.StatusBadRequest, "id", "reason")
		for err, status := range map[error]int{
			fmt.Errorf("%w: x", job.ErrNotFound):                                                 http.StatusNotFound,
			fmt.Errorf("%w: x", job.ErrFinished):                                                 http.StatusConflict,
			&job.ValidationError{Fields: []job.FieldError{{Field: "reason", Detail: "say why"}}}: http.StatusBadRequest,
		} {
			a, _ := newFake(t, jobcmd.Result{}, err)
			wantProblem(t, a.write(t, http.MethodPost, path, `{"reason": " "}`), path, status)
		}
		a, _ = newFake(t, jobcmd.Result{JobID: aJob.ID, EventID: "e0f4c4a8-8a0b-5f6c-9a53-32b5a3c9e001", Accepted: true}, nil)
		w := a.write(t, http.MethodPost, path, `{"reason": "x"}`)
		decodeStatus[jobAcceptedJSON](t, w, http.StatusAccepted)
		wantHeader(t, w, "Location", "/api/v1/jobs/"+aJob.ID)
	})
}

// TestJobCommands runs the job commands for real: against Kafka, with
// the jobs projector and a stand-in of the job processor, so that
// read-your-writes is exercised through the API.
func TestJobCommands(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	pool := openPool(t, svc)
	kc := svc.Kafka(t)
	seedStations(t, pool,
		`{"id": "L", "name": "Quarry", "type": "loading", "geometry": {"type": "Point", "coordinates": [121, 31]}, "radius_m": 300}`,
		`{"id": "U1", "name": "Site 1", "type": "unloading", "geometry": {"type": "Point", "coordinates": [121.1, 31]}, "radius_m": 300}`)
	p, err := projector.New(projector.Config[jobs.Change]{
		Spec: jobs.Spec, Kafka: kc, Pool: pool, Projection: jobs.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "jobs projector", p.Run)
	jobtest.RunProcessor(t, kc)
	cmds, err := jobcmd.New(jobcmd.Config{Kafka: kc, Pool: pool, Now: commandsClock(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Close)
	a := newDBAPI(t, pool, func(c *Config) { c.JobCommands = cmds })

	w := a.write(t, http.MethodPost, "/api/v1/jobs", jobBody)
	created := decodeStatus[jobJSON](t, w, http.StatusCreated)
	wantHeader(t, w, "Location", "/api/v1/jobs/"+job.IDFor("ORD-1"))
	if created.ID != job.IDFor("ORD-1") || created.Vehicle != "沪A00001" || created.Status != job.StatusActive ||
		created.Stops[0].StationName != "Quarry" || created.Stops[1].Point != (job.Point{Lat: 31, Lng: 121.1}) ||
		!created.Stops[0].PlannedArrival.Equal(time.Date(2025, 3, 10, 8, 30, 0, 0, time.UTC)) {
		t.Fatalf("created %s", w.Body)
	}
	read := decode[jobJSON](t, a.get(t, "/api/v1/jobs/"+created.ID), "application/json")
	if mustJSON(t, read) != mustJSON(t, created) {
		t.Errorf("GET differs from the POST's answer:\n%s\n%s", mustJSON(t, read), mustJSON(t, created))
	}
	// The same again: 200, the job as it stands.
	if again := decodeStatus[jobJSON](t, a.write(t, http.MethodPost, "/api/v1/jobs", jobBody), http.StatusOK); again.ID != created.ID {
		t.Errorf("repeat answered %s", again.ID)
	}
	// The reference with other cargo: 409 naming external_ref.
	other := strings.Replace(jobBody, "20000", "19000", 1)
	wantProblem(t, a.write(t, http.MethodPost, "/api/v1/jobs", other), "/api/v1/jobs", http.StatusConflict, "external_ref")
	// Invalid against the read models: every field named.
	bad := `{"vehicle": "沪Z99999", "cargo": {"weight_kg": 1}, "stops": [{"station_id": "NOPE", "kind": "loading"}, {"station_id": "L", "kind": "quality"}]}`
	wantProblem(t, a.write(t, http.MethodPost, "/api/v1/jobs", bad), "/api/v1/jobs", http.StatusBadRequest,
		"vehicle", "stops[0].station_id", "stops[1].kind")

	path := "/api/v1/jobs/" + created.ID + "/cancel"
	got := decodeStatus[jobJSON](t, a.write(t, http.MethodPost, path, `{"reason": "customer called"}`), http.StatusOK)
	if got.Status != job.StatusCancelled || *got.CancelReason != "customer called" || got.CancelledAt == nil {
		t.Errorf("cancelled %+v", got)
	}
	wantProblem(t, a.write(t, http.MethodPost, path, `{"reason": "again"}`), path, http.StatusConflict)
	unknown := "/api/v1/jobs/" + job.IDFor("nothing") + "/cancel"
	wantProblem(t, a.write(t, http.MethodPost, unknown, `{"reason": "x"}`), unknown, http.StatusNotFound)
	var list jobListJSON
	if err := json.Unmarshal(a.get(t, "/api/v1/jobs?status=cancelled").Body.Bytes(), &list); err != nil || len(list.Jobs) != 1 {
		t.Errorf("cancelled jobs: %+v, %v", list, err)
	}
}
