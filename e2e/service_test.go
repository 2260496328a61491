package e2e

import (
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// binary is the tms binary built for this test run.
var binary string

func TestMain(m *testing.M) {
	if addr := os.Getenv(attackerEnv); addr != "" {
		os.Exit(attacker(addr)) // this run is a hostile test's attacker, not a test run
	}
	dir, err := os.MkdirTemp("", "tms-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = tmsproc.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newDeployment prepares a deployment of the tms binary; env (KEY=value)
// adds to its settings.
func newDeployment(t *testing.T, env ...string) *tmsproc.Deployment {
	t.Helper()
	return tmsproc.New(t, testenv.FromEnv(os.LookupEnv), binary, env...)
}

func mqttHostPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port()
}
