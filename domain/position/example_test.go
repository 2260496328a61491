package position_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/position"
)

// A fix becomes a tms.position.reported.v1 CloudEvent whose time is the
// fix time and whose id is derived from the plate and the fix time.
func ExamplePosition_Event() {
	course := 87.0
	p := position.Position{
		Plate:      "沪A12345",
		FixTime:    time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
		ReceivedAt: time.Date(2026, 11, 27, 8, 0, 1, 250e6, time.UTC),
		Lat:        31.2304, Lng: 121.4737, SpeedKmh: 42.5, Course: &course,
	}
	e, _ := p.Event("/tms/ingest/g7")
	out, _ := json.MarshalIndent(e, "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "specversion": "1.0",
	//   "id": "60143819-0a78-5a68-b37c-236cec7b3f26",
	//   "source": "/tms/ingest/g7",
	//   "type": "tms.position.reported.v1",
	//   "subject": "沪A12345",
	//   "time": "2026-11-27T08:00:00Z",
	//   "datacontenttype": "application/json",
	//   "data": {
	//     "vehicle": "沪A12345",
	//     "fix_time": "2026-11-27T08:00:00Z",
	//     "received_at": "2026-11-27T08:00:01.25Z",
	//     "lat": 31.2304,
	//     "lng": 121.4737,
	//     "speed_kmh": 42.5,
	//     "course_deg": 87,
	//     "flags": []
	//   }
	// }
}
