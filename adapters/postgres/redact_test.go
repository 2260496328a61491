package postgres

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// secretDSNs are connection strings in every form DATABASE_URL may take,
// well formed or not, each carrying secrets that must never be shown.
// Each secret contains "Sekr3t".
var secretDSNs = []struct {
	name, dsn string
	secrets   []string
}{
	{"URL", "postgres://tms:Sekr3t-url@127.0.0.1:%PORT%/tms?sslmode=disable&connect_timeout=2", []string{"Sekr3t-url"}},
	{"URL with escapes", "postgresql://tms:Sekr3t%2Fp%40ss%3Aw@127.0.0.1:%PORT%/tms?sslmode=disable&connect_timeout=2",
		[]string{"Sekr3t%2Fp%40ss%3Aw", "Sekr3t/p@ss:w"}},
	{"password parameter", "postgres://tms@127.0.0.1:%PORT%/tms?password=Sekr3t-param&sslmode=disable&connect_timeout=2",
		[]string{"Sekr3t-param"}},
	{"sslpassword parameter", "postgres://tms:Sekr3t-a@127.0.0.1:%PORT%/tms?sslpassword=Sekr3t-b&sslmode=disable&connect_timeout=2",
		[]string{"Sekr3t-a", "Sekr3t-b"}},
	{"key=value", "host=127.0.0.1 port=%PORT% user=tms password=Sekr3t-kv dbname=tms sslmode=disable connect_timeout=2",
		[]string{"Sekr3t-kv"}},
	{"key=value quoted", `host=127.0.0.1 port=%PORT% user=tms password='Sekr3t q\'uote' dbname=tms sslmode=disable connect_timeout=2`,
		[]string{"Sekr3t q", "uote"}},
	{"URL with a bad escape", "postgres://tms:Sekr3t%zz@127.0.0.1:%PORT%/tms", []string{"Sekr3t"}},
	{"URL with a bad port", "postgres://tms:Sekr3t-port@127.0.0.1:99999999/tms", []string{"Sekr3t-port"}},
	{"URL with an @ in the password", "postgres://tms:Sekr3t@at@127.0.0.1:%PORT%/tms?connect_timeout=2", []string{"Sekr3t@at", "Sekr3t"}},
	{"key=value unterminated", "host=127.0.0.1 password='Sekr3t-open dbname=tms", []string{"Sekr3t-open"}},
	{"key=value unknown", "host=127.0.0.1 password=Sekr3t-x nonsense=1", []string{"Sekr3t-x"}},
}

// TestHostileNoPasswordInErrorsOrRedactedStrings connects, migrates and
// redacts with every form of connection string, against a port where no
// Postgres listens, and requires that no error text and no redacted
// string holds a secret. Before, a malformed URL's parse error quoted the
// whole URL, a key=value string was "redacted" unchanged, and a password
// query parameter survived Redact.
func TestHostileNoPasswordInErrorsOrRedactedStrings(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	for _, c := range secretDSNs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn := strings.ReplaceAll(c.dsn, "%PORT%", port)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			texts := map[string]string{"Redact": Redact(dsn)}
			pool, err := Open(ctx, dsn)
			if err == nil {
				pool.Close()
				t.Fatal("Open succeeded against a closed port")
			}
			texts["Open"] = err.Error()
			if err := Migrate(dsn); err != nil {
				texts["Migrate"] = err.Error()
			} else {
				t.Fatal("Migrate succeeded against a closed port")
			}
			if err := MigrateDown(dsn); err != nil {
				texts["MigrateDown"] = err.Error()
			}
			for what, text := range texts {
				if strings.Contains(text, "Sekr3t") {
					t.Errorf("%s: %q shows a secret", what, text)
				}
				for _, s := range c.secrets {
					if strings.Contains(text, s) {
						t.Errorf("%s: %q shows %q", what, text, s)
					}
				}
			}
		})
	}
}

func TestRedactKeepsWhatIsNotSecret(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://tms:pw@db.example:5432/tms?sslmode=require&password=x": "postgres://tms:xxxxx@db.example:5432/tms?password=xxxxx&sslmode=require",
		"postgres://tms@db.example/tms":                                    "postgres://tms@db.example/tms",
		"host=db.example user=tms password='a b' dbname=tms":               "host=db.example user=tms password=xxxxx dbname=tms",
		"host=db.example   dbname = tms":                                   "host=db.example dbname=tms",
		"not a connection string":                                          "(unparseable connection string)",
		"postgres://tms:pw@[::1/tms":                                       "(unparseable connection string)",
	} {
		if got := Redact(dsn); got != want {
			t.Errorf("Redact(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}
