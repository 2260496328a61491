package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// The steady load: pushBatchesPerSecond G7 messages of pushBatch items a
// second, plates rotating over pushVehicles, for pushWarmup (not counted)
// then pushMeasure.
const (
	pushBatchesPerSecond = 100
	pushBatch            = 50
	pushRate             = pushBatchesPerSecond * pushBatch
	pushVehicles         = 5_000
	pushWarmup           = 3 * time.Second
	pushMeasure          = 20 * time.Second
	// pushQuiet ends the wait for stragglers once nothing has arrived for
	// this long after the last publish; pushDrain bounds that wait.
	pushQuiet = 2 * time.Second
	pushDrain = 15 * time.Second
)

// BenchmarkPublishToPush measures the latency from an MQTT publish to the
// WebSocket push of each position, through the real `tms serve` binary
// with all its roles (ingest, projector, API with the hub and its Kafka
// feed) on this machine with the services. A paho client publishes at a
// steady rate; each item's gps_time is the instant of its publish, in
// epoch ms, so the latency of a pushed position is its receive time at
// the WebSocket client minus its fix time, on the same clock (to the ms;
// the truncation of gps_time adds up to 1 ms).
func BenchmarkPublishToPush(b *testing.B) {
	reportCores(b, fmt.Sprintf("tms serve (all roles) via internal/tmsproc; paho publisher, QoS 1, %d msg/s x %d items = %d positions/s "+
		"over %d plates, %s warm-up then %s measured; one WebSocket client subscribed to everything; all co-located",
		pushBatchesPerSecond, pushBatch, pushRate, pushVehicles, pushWarmup, pushMeasure))
	b.StopTimer()
	bin, err := tmsproc.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var all []float64
	var published, received int
	for range b.N {
		lat, p, r := runPush(b, bin)
		all = append(all, lat...)
		published += p
		received += r
	}
	slices.Sort(all)
	b.ReportMetric(percentile(all, 50), "p50_ms")
	b.ReportMetric(percentile(all, 99), "p99_ms")
	b.ReportMetric(all[len(all)-1], "max_ms")
	b.ReportMetric(float64(published), "published")
	b.ReportMetric(float64(received), "received")
	b.ReportMetric(float64(published-received), "dropped")
}

// pushFrame is what the client keeps of a frame while the run lasts;
// decoding waits until it is over, to keep the client's share of the CPU
// small.
type pushFrame struct {
	at  time.Time
	raw []byte
}

// runPush runs one deployment and returns the latencies (ms) of the
// measured positions pushed, and how many were published and received.
func runPush(b *testing.B, bin string) (latencies []float64, published, received int) {
	d := tmsproc.New(b, svc, bin)
	d.Start()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	conn, _, err := websocket.Dial(ctx, "ws://"+d.HTTPAddr+"/api/v1/ws?access_token="+tmsproc.ViewerToken, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"subscribe":{}}`)); err != nil {
		b.Fatal(err)
	}
	for _, want := range []string{"subscribed", "snapshot"} {
		_, raw, err := conn.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var f struct{ Type string }
		if err := json.Unmarshal(raw, &f); err != nil || f.Type != want {
			b.Fatalf("frame %.200s, want %s", raw, want)
		}
	}
	// frames is the reader's until it sends on readDone.
	frames := make([]pushFrame, 0, pushRate*int((pushWarmup+pushMeasure)/time.Second)+pushRate)
	var lastRecv atomic.Int64
	readDone := make(chan error, 1)
	go func() {
		for {
			_, raw, err := conn.Read(ctx)
			if err != nil {
				readDone <- err
				return
			}
			now := time.Now()
			frames = append(frames, pushFrame{at: now, raw: raw})
			lastRecv.Store(now.UnixNano())
		}
	}()

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("bench-publisher")).
		SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("publisher connect: %v (a timed-out token is a failure)", tok.Error())
	}
	defer pub.Disconnect(250)
	plates := make([]string, pushVehicles)
	for i := range plates {
		plates[i] = fmt.Sprintf("沪B%05d", i)
	}
	// Tokens are judged off the publishing loop, so that the pace never
	// waits for a PUBACK.
	tokens := make(chan paho.Token, 1<<14)
	var pubFailed atomic.Int64
	judged := make(chan struct{})
	go func() {
		defer close(judged)
		for tok := range tokens {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				pubFailed.Add(1)
			}
		}
	}()

	warm := int(pushWarmup.Seconds() * pushBatchesPerSecond)
	total := warm + int(pushMeasure.Seconds()*pushBatchesPerSecond)
	interval := time.Second / pushBatchesPerSecond
	// measured maps a measured item's plate and fix time to nothing: what a
	// pushed position must be found in to count.
	measured := make(map[string]struct{}, (total-warm)*pushBatch)
	cpu := startCPU()
	b.StartTimer()
	origin := time.Now()
	var late int
	var measureStart, lastPublish time.Time
	payload := make([]byte, 0, pushBatch*110)
	for k := range total {
		due := origin.Add(time.Duration(k) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if -wait > interval {
			late++
		}
		now := time.Now()
		if k == warm {
			measureStart = now
		}
		gpsTime := now.UnixMilli()
		payload = append(payload[:0], `{"data":[`...)
		for i := range pushBatch {
			n := k*pushBatch + i
			plate := plates[n%pushVehicles]
			if i > 0 {
				payload = append(payload, ',')
			}
			payload = fmt.Appendf(payload, `{"plateNum":"%s","lng":121.%04d,"lat":31.%04d,"speed":%d,"course":%d,"gps_time":%d}`,
				plate, n%10000, (n/7)%10000, n%90, n%360, gpsTime)
			if k >= warm {
				measured[plate+"@"+strconv.FormatInt(gpsTime, 10)] = struct{}{}
			}
		}
		payload = append(payload, "]}"...)
		tokens <- pub.Publish(d.Topic, 1, false, slices.Clone(payload))
		lastPublish = now
	}
	close(tokens)
	// Stragglers: wait until nothing has come for pushQuiet.
	drainUntil := time.Now().Add(pushDrain)
	for time.Now().Before(drainUntil) {
		time.Sleep(100 * time.Millisecond)
		if time.Since(time.Unix(0, lastRecv.Load())) > pushQuiet {
			break
		}
	}
	b.StopTimer()
	shares, wall := cpu.stop()
	<-judged
	cancel()
	conn.CloseNow()
	<-readDone
	d.Stop()

	// Decode what arrived.
	seen := make(map[string]struct{}, len(measured))
	var ingestLeg, pushLeg []float64
	var events, duplicates int
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, f := range frames {
		var fr struct {
			Type  string `json:"type"`
			Event struct {
				Subject string    `json:"subject"`
				Time    time.Time `json:"time"`
				Data    struct {
					ReceivedAt time.Time `json:"received_at"`
				} `json:"data"`
			} `json:"event"`
		}
		if err := json.Unmarshal(f.raw, &fr); err != nil {
			b.Fatalf("frame %.200s: %v", f.raw, err)
		}
		if fr.Type != "event" {
			continue
		}
		events++
		key := fr.Event.Subject + "@" + strconv.FormatInt(fr.Event.Time.UnixMilli(), 10)
		if _, ok := measured[key]; !ok {
			continue // warm-up
		}
		if _, dup := seen[key]; dup {
			duplicates++
			continue
		}
		seen[key] = struct{}{}
		latencies = append(latencies, ms(f.at.Sub(fr.Event.Time)))
		ingestLeg = append(ingestLeg, ms(fr.Event.Data.ReceivedAt.Sub(fr.Event.Time)))
		pushLeg = append(pushLeg, ms(f.at.Sub(fr.Event.Data.ReceivedAt)))
	}
	if len(latencies) == 0 {
		b.Fatalf("none of the %d measured positions was pushed (%d frames)", len(measured), len(frames))
	}
	slices.Sort(ingestLeg)
	slices.Sort(pushLeg)
	sorted := slices.Sorted(slices.Values(latencies))
	// The rate between the first and the last measured publish.
	rate := float64(len(measured)-pushBatch) / lastPublish.Sub(measureStart).Seconds()
	b.Logf("published %d measured positions at %.0f positions/s (%d batches more than one interval late, %d publishes failed); "+
		"received %d of them (%d duplicates, %d coalesced or lost), %d event frames in all; "+
		"latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		len(measured), rate, late, pubFailed.Load(), len(seen), duplicates, len(measured)-len(seen), events,
		percentile(sorted, 50), percentile(sorted, 99), sorted[len(sorted)-1])
	b.Logf("split by the event's received_at (ingest's MQTT receive time): publish -> ingest p50 %.1f ms, p99 %.1f ms, max %.1f ms; "+
		"ingest -> Kafka -> feed -> hub -> client p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		percentile(ingestLeg, 50), percentile(ingestLeg, 99), ingestLeg[len(ingestLeg)-1],
		percentile(pushLeg, 50), percentile(pushLeg, 99), pushLeg[len(pushLeg)-1])
	logCPU(b, shares, wall)
	return latencies, len(measured), len(seen)
}
