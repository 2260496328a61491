package httpapi

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
)

// send sends a request with a body of contentType and headers given as
// name, value pairs.
func (a *testAPI) send(t *testing.T, method, target, token, contentType, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w
}

// write sends a JSON body as the operator.
func (a *testAPI) write(t *testing.T, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return a.send(t, method, target, operatorToken, "application/json", body, headers...)
}

// decodeStatus reads a JSON answer of status into a T.
func decodeStatus[T any](t *testing.T, w *httptest.ResponseRecorder, status int) T {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body: %s", w.Code, status, w.Body)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v; body: %s", v, err, w.Body)
	}
	return v
}

// openPool connects to a fresh migrated database.
func openPool(t *testing.T, svc testenv.Services) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(t.Context(), svc.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// seedStations stores station definitions (bodies) at version 1 as the
// projection would, through the projection itself.
func seedStations(t *testing.T, pool *pgxpool.Pool, bodies ...string) {
	t.Helper()
	var changes []station.Change
	for _, b := range bodies {
		s, err := station.Parse([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, station.Change{Kind: station.Upsert, ID: s.ID(), Version: 1, At: base, Station: s})
	}
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		return stations.NewProjection(nil, nil).Apply(t.Context(), tx, changes)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// commandEnv is an API whose station commands run for real: against
// Kafka, with the stations projector running (unless told otherwise), so
// that read-your-writes is exercised end to end.
type commandEnv struct {
	*testAPI
	pool *pgxpool.Pool
	kc   *kafka.Config
	cmds *stationcmd.Commands
}

// commandsClock is a clock for commands: a second later at each call,
// from base, so that event times are known and ordered.
func commandsClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func newCommandEnv(t *testing.T, withProjector bool, tweak ...func(*stationcmd.Config)) *commandEnv {
	t.Helper()
	svc := testenv.FromEnv(os.LookupEnv)
	env := &commandEnv{pool: openPool(t, svc), kc: svc.Kafka(t)}
	if withProjector {
		runStationsProjector(t, env.kc, env.pool)
	}
	env.cmds = newCommands(t, env.kc, env.pool, tweak...)
	env.testAPI = newDBAPI(t, env.pool, func(c *Config) { c.StationCommands = env.cmds })
	return env
}

func newCommands(t *testing.T, kc *kafka.Config, pool *pgxpool.Pool, tweak ...func(*stationcmd.Config)) *stationcmd.Commands {
	t.Helper()
	cfg := stationcmd.Config{Kafka: kc, Pool: pool, Now: commandsClock(), Timeout: 10 * time.Second}
	for _, f := range tweak {
		f(&cfg)
	}
	cmds, err := stationcmd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Close)
	return cmds
}

// runStationsProjector runs the stations projector until the test ends.
func runStationsProjector(t *testing.T, kc *kafka.Config, pool *pgxpool.Pool) {
	t.Helper()
	p, err := projector.New(projector.Config[station.Change]{
		Spec: stations.Spec, Kafka: kc, Pool: pool, Projection: stations.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "stations projector", p.Run)
}

// stationEvents reads every event of tms.stations, in order.
func stationEvents(t *testing.T, kc *kafka.Config) []station.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	topic := kc.Topic(event.TopicStations)
	cl, err := kc.NewClient("test-reader", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []station.Change
	for int64(len(out)) < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d station events: %v", len(out), want, err)
		}
		for _, r := range fetches.Records() {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			c, err := station.FromEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != c.ID {
				t.Errorf("event of %s keyed %q", c.ID, r.Key)
			}
			out = append(out, c)
		}
	}
	return out
}
