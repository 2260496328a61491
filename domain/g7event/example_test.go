package g7event_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/g7event"
)

// A G7 stop reported closed becomes a tms.g7.event.reported.v1 CloudEvent
// whose time is the stop's end. Its data's g7_event_id is the stop's
// identity (plate, kind, start), the same in its open report; the
// envelope id also holds the end, so that the open report has another.
func ExampleReport_Event() {
	end := time.Date(2026, 11, 27, 8, 20, 0, 0, time.UTC)
	push := end.Add(30 * time.Second)
	secs := 1200.0
	r := g7event.Report{
		Plate: "沪A12345", Kind: g7event.KindStop,
		Start: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), End: &end, Seconds: &secs,
		StartLat: 31.2304, StartLng: 121.4737, PushTime: &push,
		ReceivedAt: time.Date(2026, 11, 27, 8, 20, 31, 250e6, time.UTC),
	}
	e, _ := r.Event("/tms/ingest/g7")
	out, _ := json.MarshalIndent(e, "", "  ")
	fmt.Println(string(out))
	open := r
	open.End = nil
	o, _ := open.Event("/tms/ingest/g7")
	fmt.Println(o.ID != e.ID, open.Key() == r.Key())
	// Output:
	// {
	//   "specversion": "1.0",
	//   "id": "f489856c-5611-5f61-9a56-a318a63c47ed",
	//   "source": "/tms/ingest/g7",
	//   "type": "tms.g7.event.reported.v1",
	//   "subject": "沪A12345",
	//   "time": "2026-11-27T08:20:00Z",
	//   "datacontenttype": "application/json",
	//   "data": {
	//     "g7_event_id": "3c7f00aa-98fc-52a9-9552-afbe6b0b42c4",
	//     "vehicle": "沪A12345",
	//     "kind": "stop",
	//     "open": false,
	//     "start_time": "2026-11-27T08:00:00Z",
	//     "end_time": "2026-11-27T08:20:00Z",
	//     "g7_seconds": 1200,
	//     "lat": 31.2304,
	//     "lng": 121.4737,
	//     "end_lat": null,
	//     "end_lng": null,
	//     "push_time": "2026-11-27T08:20:30Z",
	//     "received_at": "2026-11-27T08:20:31.25Z"
	//   }
	// }
	// true true
}
