package ws_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
)

// BenchmarkPublish measures events/s through Publish with N real
// WebSocket clients reading as fast as they can (in the same process, so
// they share its CPUs), their filters a mix of what dashboards send:
// everything, a quarter of the map, five vehicles, geofence events only.
// Publish never waits for the clients; those that fall behind coalesce,
// which frames/event and coalesced/event show. The "idle" cases have
// clients whose filters match nothing: the per-client cost of an event a
// client does not want.
func BenchmarkPublish(b *testing.B) {
	mixed := []string{
		`{}`,
		`{"bbox": [120, 30, 121, 31]}`,
		`{"vehicles": ["沪A00001", "沪A00002", "沪A00003", "沪A00004", "沪A00005"]}`,
		`{"types": ["tms.vehicle.entered_station.v1", "tms.vehicle.exited_station.v1"]}`,
	}
	idle := []string{
		`{"bbox": [0, 0, 1, 1]}`,
		`{"vehicles": ["京Z99999"]}`,
		`{"types": ["tms.job.created.v1"]}`,
	}
	// A fleet of 1000 vehicles in a 2°x2° area; one event in 20 is a
	// station entry.
	rng := rand.New(rand.NewPCG(1, 2))
	events := make([]event.Envelope, 10000)
	for i := range events {
		plate := fmt.Sprintf("沪A%05d", rng.IntN(1000))
		at := t0.Add(time.Duration(i) * time.Second)
		lat, lng := 30+2*rng.Float64(), 120+2*rng.Float64()
		if i%20 == 0 {
			events[i] = geofenceEvent(b, event.TypeEnteredStation, plate, "S1", at, lat, lng)
		} else {
			events[i] = pos(b, plate, at, lat, lng)
		}
	}
	for _, bc := range []struct {
		name    string
		clients int
		filters []string
	}{
		{"mixed", 10, mixed},
		{"mixed", 100, mixed},
		{"mixed", 500, mixed},
		{"idle", 500, idle},
	} {
		n, filters := bc.clients, bc.filters
		b.Run(fmt.Sprintf("%s/clients=%d", bc.name, n), func(b *testing.B) {
			h := newHarness(b, ws.Config{MaxConnections: n})
			for i := range n {
				c := h.dial(b)
				f := filters[i%len(filters)]
				c.subscribe(f, !strings.Contains(f, "types"))
				go func() {
					for {
						_, r, err := c.conn.NextReader()
						if err != nil {
							return
						}
						_, _ = io.Copy(io.Discard, r)
					}
				}()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.hub.Publish(events[i%len(events)])
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
			sent := h.metric(b, "tms_ws_frames_sent_total{type=event}")
			b.ReportMetric(sent/float64(i), "frames/event")
			b.ReportMetric(h.metric(b, "tms_ws_frames_coalesced_total")/float64(i), "coalesced/event")
		})
	}
}
