package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// post sends body as the operator and returns the status and the answer.
func post(t *testing.T, d *tmsproc.Deployment, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.HTTPAddr+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+tmsproc.OperatorToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp.Header
}

// TestJobCommandsReadYourWrites runs the binary with every role, the job
// processor included: a job created through the API is answered once the
// processor has made it and the jobs read model shows it (201, not 202),
// a repeat of its reference answers it (200), and a cancellation is
// answered once the read model shows the job cancelled.
func TestJobCommandsReadYourWrites(t *testing.T) {
	t.Parallel()
	// A short decision delay keeps the test short; the command timeout
	// stays the default.
	d := newDeployment(t, "TMS_JOBS_DECISION_DELAY=3s")
	d.Start()
	for _, body := range []string{
		`{"id":"L","name":"Quarry","type":"loading","geometry":{"type":"Point","coordinates":[121.5,31.3]},"radius_m":300}`,
		`{"id":"U","name":"Site","type":"unloading","geometry":{"type":"Point","coordinates":[121.6,31.3]},"radius_m":300}`,
	} {
		if status, out, _ := post(t, d, "/api/v1/stations", body); status != http.StatusCreated {
			t.Fatalf("create station: %d %v", status, out)
		}
	}
	// The vehicle reports live, parked away from the stations: its fixes
	// move the processor's watermark, which a command waits for.
	publish := publisher(t, d)
	const plate = "沪J00001"
	publish(plate, time.Now())
	tmsproc.Eventually(t, 30*time.Second, "the vehicle in the read model", func() bool {
		return d.Get("/api/v1/vehicles/%E6%B2%AAJ00001", nil) == http.StatusOK
	})
	testenv.Go(t, "live fixes", func(ctx context.Context) error {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-tick.C:
				publish(plate, now)
			}
		}
	})

	const body = `{"vehicle":"沪J00001","external_ref":"E2E-1","cargo":{"weight_kg":12000},
		"stops":[{"station_id":"L","kind":"loading"},{"station_id":"U","kind":"unloading"}]}`
	start := time.Now()
	status, created, header := post(t, d, "/api/v1/jobs", body)
	if status != http.StatusCreated || created["status"] != "active" || created["external_ref"] != "E2E-1" ||
		header.Get("Location") != "/api/v1/jobs/"+created["id"].(string) {
		t.Fatalf("create: %d %v %v", status, created, header)
	}
	t.Logf("created, as the read model shows it, in %s", time.Since(start).Round(time.Millisecond))
	id := created["id"].(string)
	var read map[string]any
	if d.Get("/api/v1/jobs/"+id, &read) != http.StatusOK || read["started_at"] == nil {
		t.Errorf("GET after the create: %v", read)
	}
	if status, again, _ := post(t, d, "/api/v1/jobs", body); status != http.StatusOK || again["id"] != id {
		t.Errorf("repeat: %d %v", status, again)
	}
	status, cancelled, _ := post(t, d, "/api/v1/jobs/"+id+"/cancel", `{"reason":"e2e"}`)
	if status != http.StatusOK || cancelled["status"] != "cancelled" || cancelled["cancel_reason"] != "e2e" {
		t.Errorf("cancel: %d %v", status, cancelled)
	}
	if status, _, _ := post(t, d, "/api/v1/jobs/"+id+"/cancel", `{"reason":"again"}`); status != http.StatusConflict {
		t.Errorf("cancel again: %d", status)
	}
}
