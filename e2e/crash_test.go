package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// TestSIGKILLMidStreamLosesAndDoublesNothing publishes a few thousand
// positions at QoS 1 while tms is killed with SIGKILL and started again.
// The broker keeps what tms had not acknowledged; afterwards the history
// holds every position exactly once and every count is exact.
func TestSIGKILLMidStreamLosesAndDoublesNothing(t *testing.T) {
	t.Parallel()
	const (
		vehicles  = 50
		perBatch  = 20
		batches   = 150 // 3,000 positions
		positions = perBatch * batches
	)
	d := newDeployment(t)
	d.Start()

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("publisher")).
		SetAutoReconnect(true).SetMaxResumePubInFlight(32))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)

	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var published atomic.Int64
	pubErr := make(chan error, 1)
	// The publisher is paced (a batch every 20 ms, 1,000 positions/s), so
	// that the kill below lands while positions are still streaming in.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	go func() {
		for b := range batches {
			<-pace.C
			items := make([]string, 0, perBatch)
			for i := range perBatch {
				n := b*perBatch + i
				items = append(items, fmt.Sprintf(`{"plateNum":"沪K%05d","lng":121.%04d,"lat":31.%04d,"speed":30,"gps_time":%d}`,
					n%vehicles, n%10000, n%10000, start.Add(time.Duration(n/vehicles)*time.Second).UnixMilli()))
			}
			tok := pub.Publish(d.Topic, 1, false, `{"data":[`+strings.Join(items, ",")+`]}`)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				pubErr <- fmt.Errorf("publish batch %d: %v (a timed-out token is a failure)", b, tok.Error())
				return
			}
			published.Add(perBatch)
		}
		pubErr <- nil
	}()

	// Kill tms once it is visibly mid-stream: some positions stored, far
	// from all of them.
	tmsproc.Eventually(t, time.Minute, "tms storing positions", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) >= positions/5
	})
	d.Kill()
	stored := d.Count(`SELECT count(*) FROM positions`)
	t.Logf("SIGKILL with %d positions published and %d stored", published.Load(), stored)
	if stored >= positions {
		t.Fatalf("everything was stored before the kill; the test proves nothing")
	}
	d.Start()

	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	tmsproc.Eventually(t, 2*time.Minute, "every published position stored", func() bool {
		return d.Count(`SELECT count(*) FROM positions`) >= positions
	})
	// Let a doubled row have every chance to show: wait until the
	// projector has consumed everything Kafka holds, then count.
	d.WaitProjectorCaughtUp(time.Minute)
	rows := d.Count(`SELECT count(*) FROM positions`)
	distinct := d.Count(`SELECT count(DISTINCT (plate, fix_time)) FROM positions`)
	counted := d.Count(`SELECT coalesce(sum(positions_count), 0) FROM vehicles`)
	if rows != positions || distinct != positions || counted != positions {
		t.Errorf("positions %d (distinct %d), vehicles count %d; want %d each", rows, distinct, counted, positions)
	}
	if v := d.Count(`SELECT count(*) FROM vehicles`); v != vehicles {
		t.Errorf("%d vehicles, want %d", v, vehicles)
	}
	d.Stop()
}
