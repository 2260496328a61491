package vehicles_test

import (
	"bytes"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/migrations"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// fixAt is a fix of plate taken at at.
func fixAt(plate string, at time.Time, lat float64) position.Position {
	return position.Position{Plate: plate, FixTime: at, ReceivedAt: at.Add(time.Second), Lat: lat, Lng: 121, SpeedKmh: 30}
}

// placement maps each stored fix (plate and fix time) to the partition
// that holds it.
func placement(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT plate || ' ' || to_char(fix_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
		tableoid::regclass::text FROM positions`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var k, part string
	if _, err := pgx.ForEachRow(rows, []any{&k, &part}, func() error { out[k] = part; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func partitionNames(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	parts, err := vehicles.Partitions(t.Context(), pool, vehicles.PositionsTable)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	return names
}

// TestFixesOfAnyMonthAreStoredInTheirMonth projects fixes of many
// months, among them a receiver's idea of 1999 and of 2087, in one topic:
// the projector makes each month's partition as it meets it, and every
// fix lies in the partition of its UTC month.
func TestFixesOfAnyMonthAreStoredInTheirMonth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	times := []time.Time{
		time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), // the month's first instant
		time.Date(2026, 2, 28, 16, 30, 0, 0, time.FixedZone("CST", 8*3600)),
		time.Date(2026, 5, 10, 8, 0, 0, 0, time.UTC),
		time.Date(1999, 8, 21, 23, 59, 47, 0, time.UTC), // a GPS week rollover
		time.Date(2087, 3, 1, 0, 0, 0, 0, time.UTC),
	}
	var fixes []position.Position
	for i, at := range times {
		fixes = append(fixes, fixAt("沪F00001", at, 31+float64(i)/100), fixAt("沪F00002", at.Add(time.Second), 30))
	}
	n := h.produce(t, fixes...)
	h.start(t, projector.Config[position.Position]{MaxBatch: 3, Members: 2})
	h.waitApplied(t, n)

	got := placement(t, h.pool)
	if len(got) != len(fixes) {
		t.Fatalf("%d fixes stored, want %d", len(got), len(fixes))
	}
	for _, f := range fixes {
		key := f.Plate + " " + f.FixTime.UTC().Format("2006-01-02T15:04:05")
		if want := "positions_p" + f.FixTime.UTC().Format("200601"); got[key] != want {
			t.Errorf("fix %s is in %q, want %s", key, got[key], want)
		}
	}
	want := []string{"positions_p199908", "positions_p202601", "positions_p202602", "positions_p202605", "positions_p208703"}
	if names := partitionNames(t, h.pool); !slices.Equal(names, want) {
		t.Errorf("partitions %v, want %v", names, want)
	}
}

// seed stores fixes directly, as a bulk load would: partitions first.
func seed(t *testing.T, pool *pgxpool.Pool, fixes []position.Position) {
	t.Helper()
	times := make([]time.Time, len(fixes))
	rows := make([][]any, len(fixes))
	for i, f := range fixes {
		times[i] = f.FixTime
		rows[i] = []any{f.Plate, f.FixTime, f.ReceivedAt, f.Lat, f.Lng, f.SpeedKmh, f.Course, []string{}}
	}
	if _, err := vehicles.EnsurePartitions(t.Context(), pool, vehicles.PositionsTable, times...); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.CopyFrom(t.Context(), pgx.Identifier{"positions"},
		[]string{"plate", "fix_time", "received_at", "lat", "lng", "speed_kmh", "course_deg", "flags"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
}

func monthly(plate string, from time.Time, months, perMonth int) []position.Position {
	var out []position.Position
	for m := range months {
		start := from.AddDate(0, m, 0)
		for i := range perMonth {
			out = append(out, fixAt(plate, start.Add(time.Duration(i)*97*time.Hour/time.Duration(perMonth)), 31))
		}
	}
	return out
}

func countPositions(t *testing.T, pool *pgxpool.Pool, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM positions WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRetentionDropsWholeMonthsAndNothingElse keeps 60 days on 15 June:
// the months that ended before 16 April (January to March) go, whole;
// April, which ends after it, stays whole, and so does every row of the
// months after it. The history's recorded start moves to 1 April, and a
// late fix of March that the projector reads afterwards is not stored
// again (and is counted), while one of April is.
func TestRetentionDropsWholeMonthsAndNothingElse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seed(t, h.pool, append(monthly("沪G00001", jan, 6, 40), monthly("沪G00002", jan.Add(12*time.Hour), 6, 25)...))
	// What an interrupted run would leave: a month detached, not dropped;
	// and a table of the same form that is no older than the horizon.
	for _, sql := range []string{
		`CREATE TABLE positions_p202512 (LIKE positions)`,
		`CREATE TABLE positions_p202606x (LIKE positions)`,
	} {
		if _, err := h.pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	before := placement(t, h.pool)

	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	m, err := vehicles.NewMaintenance(vehicles.MaintenanceConfig{
		Pool: h.pool, Retention: 60 * 24 * time.Hour, Ahead: 1, Now: func() time.Time { return now },
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"positions_p202604", "positions_p202605", "positions_p202606", "positions_p202607"}
	if names := partitionNames(t, h.pool); !slices.Equal(names, want) {
		t.Errorf("partitions %v, want %v (April to June, and July made ahead)", names, want)
	}
	after := placement(t, h.pool)
	kept := 0
	for k, part := range before {
		if part >= "positions_p202604" {
			kept++
			if after[k] != part {
				t.Errorf("fix %s of %s: now in %q", k, part, after[k])
			}
		} else if _, ok := after[k]; ok {
			t.Errorf("fix %s of %s survived", k, part)
		}
	}
	if len(after) != kept || kept != 3*(40+25) {
		t.Errorf("%d fixes left, %d of them from April on; want the 195 of April to June", len(after), kept)
	}
	from, ok, err := vehicles.HistoryFrom(t.Context(), h.pool, vehicles.PositionsTable)
	if err != nil || !ok || !from.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("history from %s (%v, %v), want 1 April", from, ok, err)
	}
	var leftovers []string
	rows, _ := h.pool.Query(t.Context(), `SELECT relname::text FROM pg_class WHERE relname LIKE 'positions\_p%' AND relkind = 'r' AND NOT relispartition`)
	leftovers, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(leftovers, []string{"positions_p202606x"}) {
		t.Errorf("detached tables left: %v (%v); want only positions_p202606x, which is not of a month's form", leftovers, err)
	}
	if got := metric(t, reg, "tms_positions_partitions_dropped_total"); got != 3 {
		t.Errorf("tms_positions_partitions_dropped_total = %v, want 3", got)
	}
	for _, p := range []string{"positions_p202601", "positions_p202602", "positions_p202603", "positions_p202512"} {
		if !strings.Contains(logs.String(), p) {
			t.Errorf("the log does not say %s was dropped:\n%s", p, logs.String())
		}
	}

	// The projector, reading late fixes of March and April now.
	preg := prometheus.NewRegistry()
	n := h.produce(t, fixAt("沪G00003", time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), 31),
		fixAt("沪G00003", time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), 31))
	h.start(t, projector.Config[position.Position]{Projection: vehicles.NewProjection(preg, nil)})
	h.waitApplied(t, n)
	if got := countPositions(t, h.pool, `plate = '沪G00003'`); got != 1 {
		t.Errorf("%d fixes of the late vehicle stored, want 1 (April's)", got)
	}
	if got := metric(t, preg, "tms_positions_before_retention_total"); got != 1 {
		t.Errorf("tms_positions_before_retention_total = %v, want 1", got)
	}
	if names := partitionNames(t, h.pool); !slices.Equal(names, want) {
		t.Errorf("after the late fixes: partitions %v, want %v (March not made again)", names, want)
	}

	// A second run finds nothing more to drop.
	if err := m.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := countPositions(t, h.pool, `true`); got != 196 {
		t.Errorf("%d fixes after a second run, want 196", got)
	}
}

// metric is the sum of the named counter's series in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestWithoutRetentionNothingIsDropped: the default keeps everything.
func TestWithoutRetentionNothingIsDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed(t, h.pool, monthly("沪H00001", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), 3, 10))
	m, err := vehicles.NewMaintenance(vehicles.MaintenanceConfig{Pool: h.pool})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := countPositions(t, h.pool, `true`); got != 30 {
		t.Errorf("%d fixes, want 30", got)
	}
	names := partitionNames(t, h.pool)
	current := "positions_p" + time.Now().UTC().Format("200601")
	if !slices.Contains(names, "positions_p201901") || !slices.Contains(names, current) || len(names) != 6 {
		t.Errorf("partitions %v: want 2019's three, the current month and the next two", names)
	}
	if _, ok, _ := vehicles.HistoryFrom(t.Context(), h.pool, vehicles.PositionsTable); ok {
		t.Error("a history start recorded without retention")
	}
}

// TestMigrationKeepsAnExistingHistory takes a database back to the
// unpartitioned positions of the migration before 6, fills it, and migrates it up
// again: every fix is kept, in its month's partition.
func TestMigrationKeepsAnExistingHistory(t *testing.T) {
	t.Parallel()
	url := testenv.FromEnv(os.LookupEnv).Postgres(t)
	step := func(n int) {
		t.Helper()
		db := stdlib.OpenDB(*mustConfig(t, url))
		defer db.Close()
		driver, err := migratepgx.WithInstance(db, &migratepgx.Config{})
		if err != nil {
			t.Fatal(err)
		}
		src, err := iofs.New(migrations.FS, ".")
		if err != nil {
			t.Fatal(err)
		}
		m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Migrate(uint(n)); err != nil {
			t.Fatalf("migrate to %d: %v", n, err)
		}
	}
	// The migration before 6.
	step(5)
	pool, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var partitioned bool
	if err := pool.QueryRow(t.Context(), `SELECT relkind = 'p' FROM pg_class WHERE relname = 'positions'`).Scan(&partitioned); err != nil || partitioned {
		t.Fatalf("at migration 5 positions is partitioned (%v)", err)
	}
	fixes := append(monthly("沪J00001", time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC), 4, 7),
		fixAt("沪J00002", time.Date(1999, 8, 21, 23, 59, 47, 0, time.UTC), 30))
	for _, f := range fixes {
		if _, err := pool.Exec(t.Context(), `INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh)
			VALUES ($1, $2, $3, $4, $5, $6)`, f.Plate, f.FixTime, f.ReceivedAt, f.Lat, f.Lng, f.SpeedKmh); err != nil {
			t.Fatal(err)
		}
	}
	pool.Reset() // the table's type changes under the cached statements
	step(6)
	got := placement(t, pool)
	if len(got) != len(fixes) {
		t.Fatalf("%d fixes after the migration, want %d", len(got), len(fixes))
	}
	for _, f := range fixes {
		key := f.Plate + " " + f.FixTime.UTC().Format("2006-01-02T15:04:05")
		if want := "positions_p" + f.FixTime.UTC().Format("200601"); got[key] != want {
			t.Errorf("fix %s is in %q, want %s", key, got[key], want)
		}
	}
}

func mustConfig(t *testing.T, url string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAMonthGoneFromUnderTheProjectionIsMadeAgain: the projection
// remembers which months have a partition; when the table is replaced
// under it (`tms rebuild` switches in tables without the months made
// ahead) or a month is dropped, its next fix of that month is stored all
// the same, in the same transaction, rather than failing the batch.
func TestAMonthGoneFromUnderTheProjectionIsMadeAgain(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	p := vehicles.NewProjection(nil, slog.New(slog.DiscardHandler))
	march := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	apply := func(f position.Position) error {
		return pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
			return p.Apply(t.Context(), tx, []position.Position{f})
		})
	}
	if err := apply(fixAt("沪G00001", march, 31)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `DROP TABLE positions_p202603`); err != nil {
		t.Fatal(err)
	}
	if err := apply(fixAt("沪G00001", march.Add(time.Hour), 31.1)); err != nil {
		t.Fatalf("a fix of a month whose partition went: %v", err)
	}
	if n := countPositions(t, pool, `plate = $1`, "沪G00001"); n != 1 {
		t.Errorf("%d fixes stored after the month was dropped, want the one since", n)
	}
	if names := partitionNames(t, pool); !slices.Equal(names, []string{"positions_p202603"}) {
		t.Errorf("partitions %v, want positions_p202603 made again", names)
	}
}

// TestConcurrentWritersMakeAMonthOnce: the members of a projector (or of
// a rebuild) that write the first fixes of a month at the same time each
// ask for its partition in their own transaction; one makes it, the
// others find it, and none fails. Before, a writer that had waited for
// the creator's lock could still miss the new table in its catalogue
// cache and fail with "already exists" (a retried batch).
func TestConcurrentWritersMakeAMonthOnce(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for round := range 20 {
		month := time.Date(2030+round/12, time.Month(1+round%12), 15, 0, 0, 0, 0, time.UTC)
		const writers = 6
		start := make(chan struct{})
		errs := make(chan error, writers)
		for range writers {
			go func() {
				<-start
				errs <- pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
					_, err := vehicles.EnsurePartitions(t.Context(), tx, vehicles.PositionsTable, month)
					return err
				})
			}()
		}
		close(start)
		for range writers {
			if err := <-errs; err != nil {
				t.Fatalf("round %d, %s: %v", round, month.Format("2006-01"), err)
			}
		}
	}
}
