package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// schemathesisEnv names the Schemathesis CLI to run; `make test` installs
// it (pinned, deploy/test/requirements-schemathesis.txt) and sets this.
const schemathesisEnv = "TMS_SCHEMATHESIS"

// TestHostileSchemathesisFindsNoMismatch fuzzes the running tms from the
// OpenAPI document it serves, with Schemathesis, a tool no one here wrote:
// every check, every phase (the document's examples, its boundaries, random
// cases valid and invalid, and the stateful phase, which follows the
// document's links from a created station to reading, replacing and
// deleting it), with the operator token. What JSON Schema cannot say about
// a request (a polygon's validity, a time window's length) is listed in
// deploy/test/schemathesis.toml, operation by operation. Any failure it reports (a 5xx, an
// answer the document does not describe, a request the document allows
// but the server refuses or the other way round) fails the test, with
// Schemathesis's report.
func TestHostileSchemathesisFindsNoMismatch(t *testing.T) {
	t.Parallel()
	cli := os.Getenv(schemathesisEnv)
	if cli == "" {
		if testenv.FromEnv(os.LookupEnv).Require {
			t.Fatalf("%s is not set: run `make test`, which installs Schemathesis, or set it to a schemathesis CLI", schemathesisEnv)
		}
		t.Skipf("%s is not set (make test sets it)", schemathesisEnv)
	}
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("%s: %v", schemathesisEnv, err)
	}
	// Rates high enough that the fuzzer is not held back by the limits
	// it would otherwise run into (they have tests of their own).
	// The seeded positions are an hour old, so the job processor's
	// watermark never reaches a job command's time: every valid create and
	// cancellation is answered 202 after the command timeout, which is
	// kept short (above the decision delay, as it must be).
	d := newDeployment(t, "TMS_HTTP_TOKEN_RATE=100000", "TMS_HTTP_TOKEN_BURST=100000",
		"TMS_HTTP_ADDRESS_RATE=100000", "TMS_HTTP_ADDRESS_BURST=100000",
		"TMS_JOBS_DECISION_DELAY=3s", "TMS_JOB_COMMAND_TIMEOUT=4s")
	d.Start()
	seed(t, d)

	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	base := "http://" + d.HTTPAddr
	config, err := filepath.Abs("../deploy/test/schemathesis.toml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, cli, "--no-color", "--config-file", config,
		"run", base+"/api/v1/openapi.json",
		"--url", base,
		"--header", "Authorization: Bearer "+tmsproc.OperatorToken,
		"--checks", "all",
		"--phases", "examples,coverage,fuzzing,stateful",
		"--max-examples", envOr("TMS_SCHEMATHESIS_MAX_EXAMPLES", "60"),
		"--seed", envOr("TMS_SCHEMATHESIS_SEED", "7"),
		// One worker: with two threads, Hypothesis's lambda descriptions
		// call ast.parse concurrently, which CPython 3.11 can fail with
		// "AST constructor recursion depth mismatch" (a runtime error
		// of the tool, not a finding; seen once in make test).
		"--workers", "1",
		"--request-timeout", "20",
		"--generation-database", "none",
		// A WebSocket is not an HTTP operation a fuzzer can drive: an
		// upgrade it stumbled on would hold its worker until the end.
		"--exclude-path", "/api/v1/ws",
		"--report", "junit", "--report-dir", t.TempDir(),
	)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "PYTHONIOENCODING=utf-8")
	cmd.Dir = t.TempDir() // where it keeps its cache (.schemathesis), out of the tree
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("schemathesis ran for %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("schemathesis reports failures (%v):\n%s", err, out.String())
	}
	summary := out.String()
	if i := strings.LastIndex(summary, "SUMMARY"); i >= 0 {
		summary = summary[i:]
	}
	t.Logf("schemathesis:\n%s", summary)
}

// seed gives the stateful phase something to link: stations (a circle
// and a polygon) and vehicles with positions. The OpenAPI document's
// example of a job names them, so that its create is a valid one.
func seed(t *testing.T, d *tmsproc.Deployment) {
	t.Helper()
	for _, body := range []string{
		`{"id":"S-CIRCLE","name":"Quarry","type":"loading","geometry":{"type":"Point","coordinates":[121.40,31.20]},"radius_m":300}`,
		`{"id":"S-POLY","name":"Yard","type":"parking","geometry":{"type":"Polygon","coordinates":[[[121.41,31.21],[121.42,31.21],[121.42,31.22],[121.41,31.22],[121.41,31.21]]]}}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.HTTPAddr+"/api/v1/stations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tmsproc.OperatorToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create station: %d", resp.StatusCode)
		}
	}
	publish := publisher(t, d)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 3 {
		for j := range 3 {
			publish(fmt.Sprintf("沪S%05d", i), t0.Add(time.Duration(j)*time.Minute))
		}
	}
	tmsproc.Eventually(t, 30*time.Second, "the seeded positions in the read models", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) == 9
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
