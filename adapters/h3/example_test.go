package h3_test

import (
	"fmt"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// Index two overlapping stations, a circle and a square yard, and follow
// one vehicle with a cursor.
func Example() {
	ix, err := h3.New(h3.Config{})
	if err != nil {
		panic(err)
	}
	depot := geo.Point{Lat: 31.2304, Lng: 121.4737}
	if err := ix.Add(1, geofence.Shape{Circle: &geo.Circle{Center: depot, RadiusM: 300}}); err != nil {
		panic(err)
	}
	yard := geo.Polygon{geo.Ring{
		{Lat: 31.2300, Lng: 121.4730}, {Lat: 31.2300, Lng: 121.4800},
		{Lat: 31.2340, Lng: 121.4800}, {Lat: 31.2340, Lng: 121.4730},
		{Lat: 31.2300, Lng: 121.4730},
	}}
	if err := ix.Add(2, geofence.Shape{Polygons: geo.MultiPolygon{yard}}); err != nil {
		panic(err)
	}

	vehicle := ix.NewCursor()
	for _, p := range []geo.Point{
		{Lat: 31.2290, Lng: 121.4725}, // inside the circle only
		{Lat: 31.2310, Lng: 121.4740}, // both
		{Lat: 31.2340, Lng: 121.4790}, // on the yard's north edge
		{Lat: 31.2400, Lng: 121.4900}, // neither
	} {
		fmt.Println(vehicle.Locate(p, nil), vehicle.Near(p, 500, nil))
	}
	// Output:
	// [1] [1 2]
	// [1 2] [1 2]
	// [2] [1 2]
	// [] []
}
