package station_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/station"
)

// A circle defined in WGS84 becomes a tms.station.upserted.v1 event whose
// time is the command's time and whose id derives from the station id and
// the version. Detection holds only the settings the definition gave.
func ExampleStation_Upserted() {
	s, err := station.Parse([]byte(`{
		"id": "S001", "name": "Yangshan gate 3", "type": "loading",
		"geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]},
		"radius_m": 300,
		"detection": {"exit_margin_m": 50}
	}`))
	if err != nil {
		panic(err)
	}
	e, _ := s.Upserted("/tms/api", 1, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	out, _ := json.MarshalIndent(e, "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "specversion": "1.0",
	//   "id": "42613dff-d470-5bc2-a1fb-35c42423402d",
	//   "source": "/tms/api",
	//   "type": "tms.station.upserted.v1",
	//   "subject": "S001",
	//   "time": "2026-11-27T08:00:00Z",
	//   "datacontenttype": "application/json",
	//   "data": {
	//     "id": "S001",
	//     "name": "Yangshan gate 3",
	//     "type": "loading",
	//     "coord_system": "wgs84",
	//     "geometry": {
	//       "type": "Point",
	//       "coordinates": [
	//         121.4737,
	//         31.2304
	//       ]
	//     },
	//     "radius_m": 300,
	//     "detection": {
	//       "exit_margin_m": 50
	//     },
	//     "version": 1
	//   }
	// }
}

// A polygon given in GCJ-02 is stored in WGS84, what fixes are compared
// against, with the geometry as given kept as original_geometry.
func ExampleStation_Upserted_gcj02() {
	s, err := station.Parse([]byte(`{
		"id": "YARD-7", "name": "Repair yard", "type": "repair", "coord_system": "gcj02",
		"geometry": {"type": "Polygon", "coordinates": [[[121.5, 31.2], [121.51, 31.2], [121.51, 31.21], [121.5, 31.2]]]}
	}`))
	if err != nil {
		panic(err)
	}
	e, _ := s.Upserted("/tms/api", 4, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	fmt.Println(string(e.Data))
	// Output:
	// {"id":"YARD-7","name":"Repair yard","type":"repair","coord_system":"gcj02","geometry":{"type":"Polygon","coordinates":[[[121.4955551,31.202019],[121.5055914,31.2020491],[121.5055905,31.2120443],[121.4955551,31.202019]]]},"original_geometry":{"type":"Polygon","coordinates":[[[121.5,31.2],[121.51,31.2],[121.51,31.21],[121.5,31.2]]]},"detection":{},"version":4}
}

// Deleting a station is an event with the next version; a station created
// again later continues from it.
func ExampleDeletedEvent() {
	e, _ := station.DeletedEvent("/tms/api", "S001", 5, time.Date(2026, 11, 28, 17, 30, 0, 0, time.UTC))
	out, _ := json.Marshal(e)
	fmt.Println(string(out))
	// Output:
	// {"specversion":"1.0","id":"0987a227-89ea-54bf-9bca-23fdbe9db464","source":"/tms/api","type":"tms.station.deleted.v1","subject":"S001","time":"2026-11-28T17:30:00Z","datacontenttype":"application/json","data":{"id":"S001","version":5}}
}

// Parse names every bad field by its JSON path.
func ExampleParse() {
	_, err := station.Parse([]byte(`{
		"name": "Bad", "type": "depot", "colour": "red",
		"geometry": {"type": "Point", "coordinates": [121.5, 95]},
		"radius_m": 5,
		"detection": {"exit_margin_m": -1}
	}`))
	var verr *station.ValidationError
	if errors.As(err, &verr) {
		for _, f := range verr.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Detail)
		}
	}
	// Output:
	// type: must be one of loading, quality, unloading, oil, getoff, hazard, parking, repair, waypoint
	// colour: unknown field; a station has id, name, type, coord_system, geometry, radius_m and detection
	// detection.exit_margin_m: -1 is outside [0, 5000] metres
	// geometry.coordinates: latitude 95 is outside [-90, 90]
	// radius_m: 5 m is outside [10, 50000] m
}
