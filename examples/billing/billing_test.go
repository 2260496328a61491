package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/jobsim"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// pythonEnv names the Python with confluent-kafka to run billing.py with;
// `make test` makes it (.venv/billing, from requirements.txt) and sets it.
const pythonEnv = "TMS_BILLING_PYTHON"

// TestBillingConsumerChargesEveryRevisionExactlyOnce runs billing.py, the
// reference billing consumer in Python, against a real Kafka on a
// simulated day of jobs, and checks its output against freight computed
// here from what was produced:
//
//   - the day: dozens of vehicles, hundreds of jobs driven through
//     domain/job's rules (jobsim), some with a quality stop or two drops,
//     some queued behind another, some cancelled, some amended by fixes
//     that arrive late; their events produced as the job processor would,
//     in transactions, with the API's commands in between, and every
//     fifth transaction first tried and aborted with forged completions
//     in it, as a processor that crashed and retried would leave them;
//   - the first part of the day produced, the consumer is started and
//     killed with SIGKILL as soon as it has written rows; the end of its
//     output is then torn (half a row, as a kill in the middle of a write
//     leaves it) and its group's offsets set back to the start (as if
//     none of its commits had been made), so that everything it wrote
//     comes again;
//   - the rest of the day produced, it runs again until idle;
//   - its output must hold exactly one row per committed (job, revision),
//     none from an aborted transaction, each with the freight computed
//     here; its group's offsets must cover every record;
//   - a third run, with a new group, a new output and --since the time
//     the second part began, must bill exactly the revisions of the
//     second part.
func TestBillingConsumerChargesEveryRevisionExactlyOnce(t *testing.T) {
	t.Parallel()
	python := os.Getenv(pythonEnv)
	svc := testenv.FromEnv(os.LookupEnv)
	switch {
	case python == "" && svc.Require:
		t.Fatalf("%s is not set: run `make test`, which makes .venv/billing from requirements.txt, or set it to a Python with confluent-kafka", pythonEnv)
	case python == "":
		t.Skipf("%s is not set (make test sets it)", pythonEnv)
	case !svc.RealKafka() && !svc.Require:
		t.Skip("billing.py needs a real Kafka (KAFKA_BROKERS; make test starts one)")
	}
	started := time.Now()
	cfg := svc.Kafka(t)
	topic := cfg.Topic(event.TopicJobs)
	prices := loadPrices(t, "prices.csv")
	ctx := t.Context()

	day := simulateDay(t)
	t.Logf("simulated %d vehicles, %d jobs (%d cancelled), %d records, in %v", day.vehicles, day.jobs, day.cancelled,
		len(day.records), time.Since(started).Round(time.Millisecond))

	p := newProducer(t, cfg, topic)
	cut := len(day.records) * 3 / 5
	p.produce(ctx, day.records[:cut])
	firstPart := len(p.committed)

	dir := t.TempDir()
	out := filepath.Join(dir, "freight.csv")
	group := cfg.Group("billing")
	consumer := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, python, append([]string{"billing.py", "--brokers", strings.Join(cfg.Brokers, ","),
			"--namespace", cfg.Namespace, "--prices", "prices.csv", "--session-timeout-ms", "6000", "--batch", "200"}, args...)...)
		cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
		return cmd
	}

	// Run 1, killed as soon as it has written rows.
	var log1 bytes.Buffer
	run1 := consumer("--group", group, "--output", out)
	run1.Stdout, run1.Stderr = &log1, &log1
	if err := run1.Start(); err != nil {
		t.Fatal(err)
	}
	tmsproc.Eventually(t, 2*time.Minute, "the first run writes rows", func() bool { return countRows(t, out) > 0 })
	if err := run1.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := run1.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the first run was not killed by SIGKILL (%v):\n%s", err, log1.String())
	}
	rows1 := countRows(t, out)
	if rows1 == 0 || rows1 >= len(day.revisions()) {
		t.Fatalf("the first run wrote %d rows of %d: not part-way", rows1, len(day.revisions()))
	}
	// The end of the file torn, and every commit of run 1 undone.
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("00000000-0000-5000-8000-000000000000,1,TORN,沪B1"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	adm := kadm.NewClient(p.plain)
	tmsproc.Eventually(t, time.Minute, "the killed consumer leaves its group", func() bool {
		d, err := adm.DescribeGroups(ctx, group)
		return err == nil && d[group].Err == nil && (d[group].State == "Empty" || d[group].State == "Dead")
	})
	var rewind kadm.Offsets
	for part := range cfg.Partitions {
		rewind.AddOffset(topic, part, 0, -1)
	}
	resp, err := adm.CommitOffsets(ctx, group, rewind)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("set the group's offsets back: %v", err)
	}

	// The rest of the day, and run 2 to the end.
	p.produce(ctx, day.records[cut:])
	// Kafka keeps record times to the millisecond.
	since := p.committed[firstPart].timestamp.Truncate(time.Millisecond)
	if last := p.committed[firstPart-1].timestamp.Truncate(time.Millisecond); !last.Before(since) {
		t.Fatalf("the two parts' record times overlap (%v, %v)", last, since)
	}
	log2 := runToEnd(t, consumer("--group", group, "--output", out, "--until-idle", "4"))
	if m := regexp.MustCompile(`(\d+) revisions already billed skipped`).FindStringSubmatch(log2); m == nil || m[1] != strconv.Itoa(rows1) {
		t.Errorf("the second run did not meet again exactly the %d rows the first wrote:\n%s", rows1, log2)
	}
	if !strings.Contains(log2, "cutting off a torn last row") {
		t.Errorf("the second run did not cut the torn row off:\n%s", log2)
	}
	want := expectedRows(t, p.committed, prices)
	checkRows(t, readRows(t, out), want, p.forged)
	checkCommitted(t, adm, group, topic, p.committed)

	// Run 3: a new group, from a time.
	out3 := filepath.Join(dir, "since.csv")
	runToEnd(t, consumer("--group", cfg.Group("billing-since"), "--output", out3, "--until-idle", "4",
		"--since", since.UTC().Format(time.RFC3339Nano)))
	checkRows(t, readRows(t, out3), expectedRows(t, p.committed[firstPart:], prices), p.forged)

	p.checkAbortedAreThere(ctx)
	revisions := len(want)
	amended := 0
	for _, r := range want {
		if r.revision > 1 {
			amended++
		}
	}
	t.Logf("%d jobs, %d revisions billed (%d amendments), %d records committed in %d transactions, %d aborted transactions "+
		"with %d records (%d forged completions); run 1 wrote %d rows before SIGKILL; total %v",
		day.jobs, revisions, amended, len(p.committed), p.txns, p.abortedTxns, p.abortedRecords, len(p.forged), rows1,
		time.Since(started).Round(time.Millisecond))
}

func runToEnd(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out.String())
	}
	return out.String()
}

// The simulated day.

// stations are three quarries and six sites around Shanghai, a few to a
// few tens of kilometres apart; prices.csv prices most pairs, and the
// park's every pair by its default.
var stations = map[string]job.Station{
	"QUARRY-N":    {ID: "QUARRY-N", Name: "North quarry", Type: "loading", Point: job.Point{Lat: 31.38, Lng: 121.30}},
	"QUARRY-S":    {ID: "QUARRY-S", Name: "South quarry", Type: "loading", Point: job.Point{Lat: 31.02, Lng: 121.35}},
	"QUARRY-E":    {ID: "QUARRY-E", Name: "East quarry", Type: "loading", Point: job.Point{Lat: 31.22, Lng: 121.62}},
	"SITE-TOWER":  {ID: "SITE-TOWER", Name: "Tower", Type: "unloading", Point: job.Point{Lat: 31.23, Lng: 121.47}},
	"SITE-BRIDGE": {ID: "SITE-BRIDGE", Name: "Bridge", Type: "unloading", Point: job.Point{Lat: 31.28, Lng: 121.40}},
	"SITE-PORT":   {ID: "SITE-PORT", Name: "Port", Type: "unloading", Point: job.Point{Lat: 31.34, Lng: 121.58}},
	"SITE-SCHOOL": {ID: "SITE-SCHOOL", Name: "School", Type: "unloading", Point: job.Point{Lat: 31.12, Lng: 121.38}},
	"SITE-MALL":   {ID: "SITE-MALL", Name: "Mall", Type: "unloading", Point: job.Point{Lat: 31.18, Lng: 121.55}},
	"SITE-PARK":   {ID: "SITE-PARK", Name: "Park", Type: "unloading", Point: job.Point{Lat: 31.25, Lng: 121.33}},
}

var (
	quarries = []string{"QUARRY-N", "QUARRY-S", "QUARRY-E"}
	sites    = []string{"SITE-TOWER", "SITE-BRIDGE", "SITE-PORT", "SITE-SCHOOL", "SITE-MALL", "SITE-PARK"}
)

func point(id string) geo.Point { p := stations[id].Point; return geo.Point{Lat: p.Lat, Lng: p.Lng} }

type day struct {
	vehicles, jobs, cancelled int
	// records are the vehicles' records interleaved, each vehicle's in
	// its order: the order tms.jobs would get them in.
	records []event.Envelope
}

func (d day) revisions() []event.Envelope {
	var out []event.Envelope
	for _, e := range d.records {
		if e.Type == event.TypeJobCompleted || e.Type == event.TypeJobAmended {
			out = append(out, e)
		}
	}
	return out
}

const (
	dayVehicles = 40
	fixEvery    = 15 * time.Second
)

// simulateDay drives dayVehicles vehicles through 8 to 11 jobs each, from
// 06:00: empty to a quarry, loading (and a quality check there, for a
// quarter of the jobs), loaded to one site or two; a job in three is
// created while the one before it runs (so it queues), a few are
// cancelled (queued, or active after their loading), and on a job in six
// the device loses coverage on the loaded leg (and the driver takes a
// detour), its fixes arriving only after the completion settled.
func simulateDay(t *testing.T) day {
	t.Helper()
	rng := rand.New(rand.NewPCG(8, 2026))
	start := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	var d day
	var perVehicle [][]event.Envelope
	for v := range dayVehicles {
		plate := fmt.Sprintf("沪B%05d", 10000+v)
		home := geo.Point{Lat: 31.2 + rng.Float64()*0.1, Lng: 121.4 + rng.Float64()*0.1}
		drv := jobsim.New(plate, job.DefaultRules, stations, start.Add(time.Duration(rng.IntN(1800))*time.Second), home)
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		newJob := func(n int) job.Create {
			q := quarries[rng.IntN(len(quarries))]
			stops := []string{q + ":loading"}
			if rng.IntN(4) == 0 {
				stops = append(stops, q+":quality")
			}
			first := sites[rng.IntN(len(sites))]
			stops = append(stops, first+":unloading")
			if rng.IntN(5) == 0 {
				second := sites[rng.IntN(len(sites))]
				if second != first {
					stops = append(stops, second+":unloading")
				}
			}
			ref, id := fmt.Sprintf("ORD-%s-%03d", plate, n), ""
			if rng.IntN(7) == 0 {
				ref, id = "", event.ID("billing test job", plate, strconv.Itoa(n))
			}
			weight := float64(100_000+rng.IntN(300_000)) / 10 // 10 to 40 t, to 100 g
			c, err := drv.Create(ref, id, job.Cargo{WeightKg: weight}, stops...)
			must(err)
			d.jobs++
			drv.Park(10*time.Second, 5*time.Second) // no two commands at one millisecond
			return c
		}
		n := 8 + rng.IntN(4)
		var queued *job.Create
		for k := 0; k < n; k++ {
			var c job.Create
			if queued != nil {
				c, queued = *queued, nil
			} else {
				c = newJob(k)
			}
			if k+1 < n && rng.IntN(3) == 0 {
				next := newJob(k + 1)
				k++
				if rng.IntN(8) == 0 {
					must(drv.Cancel(next.JobID, "planned twice"))
					d.cancelled++
				} else {
					queued = &next
				}
			}
			speed := 40 + rng.Float64()*30
			q := c.Stops[0].StationID
			drv.Drive(point(q), speed, fixEvery)
			drv.Enter(q)
			drv.Park(time.Duration(300+rng.IntN(600))*time.Second, fixEvery)
			drv.Exit(q)
			if rng.IntN(16) == 0 { // cancelled on the way
				drv.Drive(geo.Point{Lat: point(q).Lat + 0.02, Lng: point(q).Lng}, speed, fixEvery)
				must(drv.Cancel(c.JobID, "the site refused the load"))
				drv.Park(time.Minute, fixEvery)
				d.cancelled++
				continue
			}
			late := rng.IntN(6) == 0
			for i, s := range c.Stops {
				if s.Kind != job.KindUnloading {
					continue
				}
				to := point(s.StationID)
				if late && i == len(c.Stops)-1 {
					// A third of the way, coverage is lost for a detour
					// of a couple of kilometres.
					from := point(c.Stops[i-1].StationID)
					along := func(f float64) geo.Point {
						return geo.Point{Lat: from.Lat + f*(to.Lat-from.Lat), Lng: from.Lng + f*(to.Lng-from.Lng)}
					}
					drv.Drive(along(0.3), speed, fixEvery)
					drv.Hold()
					a := along(0.35)
					drv.Drive(geo.Point{Lat: a.Lat + 0.015, Lng: a.Lng}, speed, fixEvery)
					drv.Drive(along(0.4), speed, fixEvery)
					drv.Resume()
				}
				drv.Drive(to, speed, fixEvery)
				drv.Enter(s.StationID)
				drv.Park(time.Duration(300+rng.IntN(900))*time.Second, fixEvery)
				drv.Exit(s.StationID)
			}
			drv.Park(time.Minute, fixEvery) // settles
			if late {
				drv.Release()
			}
		}
		drv.Park(2*time.Minute, fixEvery)
		perVehicle = append(perVehicle, drv.Records)
		d.vehicles++
	}
	// Interleaved a few records of each vehicle at a time.
	for left := true; left; {
		left = false
		for i := range perVehicle {
			k := min(1+rng.IntN(8), len(perVehicle[i]))
			d.records = append(d.records, perVehicle[i][:k]...)
			perVehicle[i] = perVehicle[i][k:]
			left = left || len(perVehicle[i]) > 0
		}
	}
	return d
}

// Producing it.

type produced struct {
	e         event.Envelope
	partition int32
	offset    int64
	timestamp time.Time
}

// producer writes the day as tms would: commands with a plain idempotent
// producer, events in transactions (of the events among 40 records),
// every fifth first tried and aborted.
type producer struct {
	t              *testing.T
	cfg            *kafka.Config
	txn, plain     *kgo.Client
	topic          string
	committed      []produced
	forged         map[string]bool // job id/revision of forged completions, only ever aborted
	lastDone       *event.Envelope
	txns           int
	abortedTxns    int
	abortedRecords int
}

func newProducer(t *testing.T, cfg *kafka.Config, topic string) *producer {
	t.Helper()
	txn, err := cfg.NewTransientClient("billing-test-jobs", kgo.TransactionalID(cfg.Namespace+".billing-test"),
		kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := cfg.NewTransientClient("billing-test-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { txn.Close(); plain.Close() })
	return &producer{t: t, cfg: cfg, txn: txn, plain: plain, topic: topic, forged: map[string]bool{}}
}

func (p *producer) record(e event.Envelope) *kgo.Record {
	value, err := json.Marshal(e)
	if err != nil {
		p.t.Fatal(err)
	}
	return &kgo.Record{Topic: p.topic, Key: []byte(e.Subject), Value: value,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}}}
}

func (p *producer) produce(ctx context.Context, records []event.Envelope) {
	for len(records) > 0 {
		n := min(40, len(records))
		chunk := records[:n]
		records = records[n:]
		p.txns++
		if p.txns%5 == 0 {
			p.aborted(ctx, chunk)
		}
		p.transaction(ctx, chunk)
	}
}

// transaction writes chunk: its commands first, as the API does (it
// appends a command before the processor can have decided anything from
// it), then its events in a committed transaction.
func (p *producer) transaction(ctx context.Context, chunk []event.Envelope) {
	p.t.Helper()
	var commands, events []event.Envelope
	for _, e := range chunk {
		if strings.HasPrefix(e.Type, "tms.command.") {
			commands = append(commands, e)
		} else {
			events = append(events, e)
		}
	}
	p.write(ctx, p.plain, commands)
	if err := p.txn.BeginTransaction(); err != nil {
		p.t.Fatal(err)
	}
	p.write(ctx, p.txn, events)
	if err := p.txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		p.t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == event.TypeJobCompleted || e.Type == event.TypeJobAmended {
			done := e
			p.lastDone = &done
		}
	}
}

// write produces es with cl and notes where each landed.
func (p *producer) write(ctx context.Context, cl *kgo.Client, es []event.Envelope) {
	p.t.Helper()
	recs := make([]*kgo.Record, len(es))
	for i, e := range es {
		recs[i] = p.record(e)
	}
	results := cl.ProduceSync(ctx, recs...)
	if err := results.FirstErr(); err != nil {
		p.t.Fatalf("produce: %v", err)
	}
	for i, r := range results {
		p.committed = append(p.committed, produced{e: es[i], partition: r.Record.Partition, offset: r.Record.Offset, timestamp: r.Record.Timestamp})
	}
}

// aborted tries chunk's events in a transaction that is aborted, with two
// forged completions: a revision 999 of the last job completed, and a job
// that never was.
func (p *producer) aborted(ctx context.Context, chunk []event.Envelope) {
	p.t.Helper()
	var recs []*kgo.Record
	for _, e := range chunk {
		if !strings.HasPrefix(e.Type, "tms.command.") {
			recs = append(recs, p.record(e))
		}
	}
	if p.lastDone != nil {
		for i, mutate := range []func(map[string]any){
			func(d map[string]any) { d["revision"] = 999 },
			func(d map[string]any) { d["job_id"] = event.ID("never", strconv.Itoa(p.txns)) },
		} {
			var d map[string]any
			if err := json.Unmarshal(p.lastDone.Data, &d); err != nil {
				p.t.Fatal(err)
			}
			mutate(d)
			f := *p.lastDone
			f.Type = event.TypeJobAmended
			f.ID = event.ID("forged", strconv.Itoa(p.txns), strconv.Itoa(i))
			d["amended_because"] = job.AmendedLateFixes
			f.Data, _ = json.Marshal(d)
			p.forged[fmt.Sprintf("%v/%v", d["job_id"], d["revision"])] = true
			recs = append(recs, p.record(f))
		}
	}
	if err := p.txn.BeginTransaction(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		p.t.Fatal(err)
	}
	p.abortedTxns++
	p.abortedRecords += len(recs)
}

// checkAbortedAreThere reads the topic read_uncommitted: the aborted
// records must really be in it (else the consumer's not billing them
// would prove nothing).
func (p *producer) checkAbortedAreThere(ctx context.Context) {
	p.t.Helper()
	cl, err := p.cfg.NewTransientClient("billing-test-check", kgo.ConsumeTopics(p.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		p.t.Fatal(err)
	}
	defer cl.Close()
	want := len(p.committed) + p.abortedRecords
	seen, forged := 0, 0
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for seen < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			p.t.Fatalf("read %d of %d records read_uncommitted", seen, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			var e struct {
				Data struct {
					JobID    string `json:"job_id"`
					Revision int    `json:"revision"`
				}
			}
			_ = json.Unmarshal(r.Value, &e)
			if p.forged[fmt.Sprintf("%v/%v", e.Data.JobID, e.Data.Revision)] {
				forged++
			}
		})
	}
	if forged != len(p.forged) || forged == 0 {
		p.t.Errorf("read_uncommitted finds %d forged completions, want %d", forged, len(p.forged))
	}
}

// Checking the output, against an independent computation.

type prices struct {
	pairs    map[[2]string]*big.Rat
	fallback *big.Rat
}

func loadPrices(t *testing.T, path string) prices {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	p := prices{pairs: map[[2]string]*big.Rat{}}
	for _, r := range rows[1:] {
		price := rat(t, r[2])
		if r[0] == "*" && r[1] == "*" {
			p.fallback = price
		} else {
			p.pairs[[2]string{r[0], r[1]}] = price
		}
	}
	return p
}

func rat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		t.Fatalf("not a number: %q", s)
	}
	return r
}

type row struct {
	jobID                             string
	revision                          int
	externalRef, vehicle              string
	loading, unloading                string
	loadedKm, weightT, price, freight *big.Rat
	completedAt, eventID              string
}

func (r row) key() string { return r.jobID + "/" + strconv.Itoa(r.revision) }

// expectedRows computes, for every completion and amendment among the
// records, the row billing owes: loaded km x price x weight in tonnes,
// rounded half up to the cent, the price of (first loading station, last
// unloading station) or the default.
func expectedRows(t *testing.T, records []produced, p prices) map[string]row {
	t.Helper()
	out := map[string]row{}
	for _, r := range records {
		if r.e.Type != event.TypeJobCompleted && r.e.Type != event.TypeJobAmended {
			continue
		}
		var c struct {
			JobID       string `json:"job_id"`
			Vehicle     string
			ExternalRef string `json:"external_ref"`
			Revision    int
			CompletedAt string `json:"completed_at"`
			Stops       []struct {
				Index     int
				Kind      string
				StationID string `json:"station_id"`
			}
			DistanceM struct{ Loaded json.Number } `json:"distance_m"`
			Cargo     struct {
				WeightKg json.Number `json:"weight_kg"`
			}
		}
		dec := json.NewDecoder(bytes.NewReader(r.e.Data))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(c.Stops, func(a, b struct {
			Index     int
			Kind      string
			StationID string `json:"station_id"`
		}) int {
			return a.Index - b.Index
		})
		var loading, unloading string
		for _, s := range c.Stops {
			if s.Kind == job.KindLoading && loading == "" {
				loading = s.StationID
			}
			if s.Kind == job.KindUnloading {
				unloading = s.StationID
			}
		}
		price, ok := p.pairs[[2]string{loading, unloading}]
		if !ok {
			price = p.fallback
		}
		km := new(big.Rat).Quo(rat(t, c.DistanceM.Loaded.String()), big.NewRat(1000, 1))
		tonnes := new(big.Rat).Quo(rat(t, c.Cargo.WeightKg.String()), big.NewRat(1000, 1))
		freight := new(big.Rat).Mul(new(big.Rat).Mul(km, price), tonnes)
		x := row{jobID: c.JobID, revision: c.Revision, externalRef: c.ExternalRef, vehicle: c.Vehicle, loading: loading,
			unloading: unloading, loadedKm: km, weightT: tonnes, price: price, freight: cents(freight),
			completedAt: c.CompletedAt, eventID: r.e.ID}
		if _, dup := out[x.key()]; dup {
			t.Fatalf("the day has %s twice", x.key())
		}
		out[x.key()] = x
	}
	return out
}

// cents rounds a non-negative amount half up to the cent.
func cents(r *big.Rat) *big.Rat {
	hundred := new(big.Rat).Mul(r, big.NewRat(100, 1))
	q := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(hundred.Num(), big.NewInt(2)), hundred.Denom()),
		new(big.Int).Mul(hundred.Denom(), big.NewInt(2))) // floor(x + 1/2)
	return new(big.Rat).SetFrac(q, big.NewInt(100))
}

var columns = []string{"job_id", "revision", "external_ref", "vehicle", "loading_station", "unloading_station",
	"loaded_km", "weight_t", "price_per_tonne_km", "freight", "completed_at", "event_id"}

func readRows(t *testing.T, path string) []row {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], columns) {
		t.Fatalf("%s: header %v, want %v", path, recs[:min(1, len(recs))], columns)
	}
	var out []row
	for _, r := range recs[1:] {
		rev, err := strconv.Atoi(r[1])
		if err != nil {
			t.Fatalf("row %v: %v", r, err)
		}
		out = append(out, row{jobID: r[0], revision: rev, externalRef: r[2], vehicle: r[3], loading: r[4], unloading: r[5],
			loadedKm: rat(t, r[6]), weightT: rat(t, r[7]), price: rat(t, r[8]), freight: rat(t, r[9]), completedAt: r[10], eventID: r[11]})
		if !regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`).MatchString(r[9]) {
			t.Errorf("row %v: freight %q is not to the cent", r, r[9])
		}
	}
	return out
}

// countRows counts the complete data rows of the output so far.
func countRows(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return max(bytes.Count(b, []byte("\n"))-1, 0)
}

// checkRows: one row per (job, revision) owed, none missing, none twice,
// none forged, each with the freight owed.
func checkRows(t *testing.T, got []row, want map[string]row, forged map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	bad := 0
	for _, g := range got {
		k := g.key()
		w, ok := want[k]
		switch {
		case forged[k]:
			t.Errorf("%s: billed from an aborted transaction", k)
		case seen[k]:
			t.Errorf("%s: billed twice", k)
		case !ok:
			t.Errorf("%s: billed, but no such revision was committed", k)
		case g.externalRef != w.externalRef || g.vehicle != w.vehicle || g.loading != w.loading || g.unloading != w.unloading ||
			g.loadedKm.Cmp(w.loadedKm) != 0 || g.weightT.Cmp(w.weightT) != 0 || g.price.Cmp(w.price) != 0 ||
			g.freight.Cmp(w.freight) != 0 || g.completedAt != w.completedAt || g.eventID != w.eventID:
			if bad++; bad <= 10 {
				t.Errorf("%s: got %s, want %s", k, show(g), show(w))
			}
		}
		seen[k] = true
	}
	missing := 0
	for k := range want {
		if !seen[k] {
			if missing++; missing <= 10 {
				t.Errorf("%s: not billed", k)
			}
		}
	}
	if missing+bad > 0 {
		t.Errorf("%d revisions not billed, %d billed wrong, of %d", missing, bad, len(want))
	}
}

func show(r row) string {
	return fmt.Sprintf("%s %s %s→%s %s km × %s t × %s = %s at %s", r.externalRef, r.vehicle, r.loading, r.unloading,
		r.loadedKm.FloatString(4), r.weightT.FloatString(4), r.price.FloatString(2), r.freight.FloatString(2), r.completedAt)
}

// checkCommitted: the group's offsets cover every record, so that a
// restart bills nothing again.
func checkCommitted(t *testing.T, adm *kadm.Client, group, topic string, records []produced) {
	t.Helper()
	last := map[int32]int64{}
	for _, r := range records {
		last[r.partition] = max(last[r.partition], r.offset)
	}
	offs, err := adm.FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	for part, o := range last {
		c, ok := offs.Lookup(topic, part)
		if !ok || c.Err != nil || c.At <= o {
			t.Errorf("partition %d: committed %+v, want past %d", part, c, o)
		}
	}
}
