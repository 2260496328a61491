package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHostileDatabasePasswordNeverInTheOutput starts `tms migrate` and
// `tms serve` as an operator would, with a DATABASE_URL whose database
// cannot be reached or whose string cannot be parsed, in each form the
// variable may take: whatever tms prints about it must not hold the
// password.
func TestHostileDatabasePasswordNeverInTheOutput(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for name, dsn := range map[string]string{
		"URL":                 "postgres://tms:Sekr3t-url@" + closed + "/tms?sslmode=disable&connect_timeout=2",
		"password parameter":  "postgres://tms@" + closed + "/tms?password=Sekr3t-param&connect_timeout=2",
		"key=value":           "host=127.0.0.1 port=" + strings.Split(closed, ":")[1] + " user=tms password='Sekr3t kv' connect_timeout=2",
		"URL with bad escape": "postgres://tms:Sekr3t%zz@" + closed + "/tms",
	} {
		for _, args := range [][]string{{"migrate"}, {"serve", "--roles", "project"}} {
			t.Run(fmt.Sprintf("%s/%s", name, args[0]), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, binary, args...)
				cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "TMS_DATA_DIR="+t.TempDir(),
					"TMS_KAFKA_LISTEN=127.0.0.1:0", "TMS_LOG_LEVEL=debug")
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("tms %s succeeded without a database:\n%s", args[0], out)
				}
				if strings.Contains(string(out), "Sekr3t") {
					t.Errorf("tms %s printed the password:\n%s", args[0], out)
				}
				if !strings.Contains(string(out), "postgres") {
					t.Errorf("tms %s did not say what failed:\n%s", args[0], out)
				}
			})
		}
	}
}
