package ws_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// staticFleet stands in for the vehicles read model (*vehicles.Store).
type staticFleet []vehicles.Vehicle

func (f staticFleet) List(_ context.Context, q vehicles.ListQuery) ([]vehicles.Vehicle, error) {
	var out []vehicles.Vehicle
	for _, v := range f {
		if (len(q.Plates) == 0 || slices.Contains(q.Plates, v.Plate)) && (q.BBox == nil || q.BBox.Contains(v.Lat, v.Lng)) {
			out = append(out, v)
		}
	}
	return out, nil
}

// A dashboard's session: subscribe, get the snapshot, then live events;
// a subscribe that is not valid is refused and the old one stays.
func Example() {
	fix := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	hub, err := ws.New(ws.Config{Snapshot: staticFleet{
		{Plate: "沪A12345", FixTime: fix, ReceivedAt: fix.Add(time.Second), Lat: 31.2304, Lng: 121.4737, Flags: []string{}},
		{Plate: "京B67890", FixTime: fix, ReceivedAt: fix.Add(time.Second), Lat: 39.9042, Lng: 116.4074, Flags: []string{}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(hub) // in tms: GET /api/v1/ws behind the API's auth
	defer srv.Close()
	defer hub.Close()

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	send := func(msg string) {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	receive := func(frames int) {
		for range frames {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(string(msg))
		}
	}

	send(`{"subscribe": {"vehicles": ["沪a12345"], "bbox": [121, 31, 122, 32]}}`)
	receive(2) // subscribed, snapshot

	course := 90.0
	p := position.Position{Plate: "沪A12345", FixTime: fix.Add(time.Minute), ReceivedAt: fix.Add(61 * time.Second),
		Lat: 31.2310, Lng: 121.4800, SpeedKmh: 42.5, Course: &course, Flags: []string{}}
	e, err := p.Event("/tms/ingest/g7")
	if err != nil {
		log.Fatal(err)
	}
	hub.Publish(e) // the Feed does this for every record on tms.positions
	receive(1)

	send(`{"subscribe": {"bbox": [121, 32, 122, 31]}}`)
	receive(1)

	// Output:
	// {"type":"subscribed","seq":1,"filter":{"vehicles":["沪A12345"],"bbox":[121,31,122,32]},"counts":{"vehicles":1}}
	// {"type":"snapshot","seq":2,"vehicles":[{"plate":"沪A12345","lat":31.2304,"lng":121.4737,"speed_kmh":0,"fix_time":"2025-03-01T08:00:00Z","received_at":"2025-03-01T08:00:01Z","flags":[]}]}
	// {"type":"event","seq":3,"event":{"specversion":"1.0","id":"28028372-5b33-53f6-9edc-848d5d59b21e","source":"/tms/ingest/g7","type":"tms.position.reported.v1","subject":"沪A12345","time":"2025-03-01T08:01:00Z","datacontenttype":"application/json","data":{"vehicle":"沪A12345","fix_time":"2025-03-01T08:01:00Z","received_at":"2025-03-01T08:01:01Z","lat":31.231,"lng":121.48,"speed_kmh":42.5,"course_deg":90,"flags":[]}}}
	// {"type":"error","seq":4,"field":"bbox","detail":"minLat 32 is above maxLat 31"}
}
