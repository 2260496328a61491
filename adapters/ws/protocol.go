package ws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Frame types: the "type" member of every frame the server sends.
const (
	// FrameSubscribed acknowledges a subscribe and echoes its normalised
	// filter.
	FrameSubscribed = "subscribed"
	// FrameSnapshot carries the latest position of every vehicle the
	// filter selects.
	FrameSnapshot = "snapshot"
	// FrameEvent carries one event, its CloudEvents envelope as it is on
	// the topic.
	FrameEvent = "event"
	// FrameError refuses a client message; the connection stays open.
	FrameError = "error"
)

// Filter selects the events a connection receives. It is the body of the
// client's {"subscribe": {...}} message and is echoed, normalised, in the
// subscribed frame. An absent (or null) field does not filter; the fields
// given must all match.
type Filter struct {
	// Vehicles keeps events whose subject is one of these plates
	// (normalised as ingest does: trimmed, Latin letters upper-cased).
	Vehicles []string `json:"vehicles,omitempty"`
	// Stations keeps events about one of these stations: those whose
	// data.station_id is one of them, and tms.station.* events whose
	// subject is. Positions are about no station and never pass it.
	Stations []string `json:"stations,omitempty"`
	// BBox is [minLng, minLat, maxLng, maxLat] in WGS84 degrees, edges
	// included; minLng > maxLng crosses the antimeridian. It keeps events
	// whose data.lat/data.lng lie inside, and events with neither.
	BBox []float64 `json:"bbox,omitempty"`
	// Types keeps events of these CloudEvents types.
	Types []string `json:"types,omitempty"`
}

// SnapshotVehicle is one vehicle's latest position in a snapshot frame.
// Its fields mean what they mean in tms.position.reported.v1 data.
type SnapshotVehicle struct {
	Plate      string    `json:"plate"`
	Lat        float64   `json:"lat"`
	Lng        float64   `json:"lng"`
	SpeedKmh   float64   `json:"speed_kmh"`
	CourseDeg  *float64  `json:"course_deg,omitempty"`
	FixTime    time.Time `json:"fix_time"`
	ReceivedAt time.Time `json:"received_at"`
	Flags      []string  `json:"flags"`
}

// frameKind is a frame type as an index, for the prefix table and the
// per-type metrics.
type frameKind uint8

const (
	kindSubscribed frameKind = iota
	kindSnapshot
	kindEvent
	kindError
	numKinds
)

var kindNames = [numKinds]string{FrameSubscribed, FrameSnapshot, FrameEvent, FrameError}

// framePrefixes are everything a frame has before its seq. A frame is
// prefix + seq + body, where body (",...}" or "}") is built once and
// shared: the seq is the only per-connection part of an event frame.
var framePrefixes = func() (p [numKinds]string) {
	for k, name := range kindNames {
		p[k] = `{"type":"` + name + `","seq":`
	}
	return p
}()

// appendFrame appends the frame of kind k with seq and body to dst.
func appendFrame(dst []byte, k frameKind, seq uint64, body []byte) []byte {
	dst = append(dst, framePrefixes[k]...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, body...)
}

// eventBody is the shared body of an event frame around the envelope's
// JSON.
func eventBody(envelope []byte) []byte {
	const head, tail = `,"event":`, `}`
	b := make([]byte, 0, len(head)+len(envelope)+len(tail))
	b = append(b, head...)
	b = append(b, envelope...)
	return append(b, tail...)
}

// subscribedBody is the body of the subscribed frame for f.
func subscribedBody(f *Filter) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic(fmt.Sprintf("ws: encode filter: %v", err)) // strings and finite floats always encode
	}
	return slices.Concat([]byte(`,"filter":`), b, []byte(`}`))
}

// snapshotBody is the body of the snapshot frame for vs.
func snapshotBody(vs []vehicles.Vehicle) []byte {
	out := make([]SnapshotVehicle, len(vs))
	for i, v := range vs {
		flags := v.Flags
		if flags == nil {
			flags = []string{}
		}
		out[i] = SnapshotVehicle{
			Plate: v.Plate, Lat: v.Lat, Lng: v.Lng, SpeedKmh: v.SpeedKmh, CourseDeg: v.CourseDeg,
			FixTime: v.FixTime.UTC(), ReceivedAt: v.ReceivedAt.UTC(), Flags: flags,
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		// Only a NaN or infinite coordinate fails to encode, and the
		// read model holds validated fixes only.
		panic(fmt.Sprintf("ws: encode snapshot: %v", err))
	}
	return slices.Concat([]byte(`,"vehicles":`), b, []byte(`}`))
}

// requestError is a client message the hub refuses. It becomes an error
// frame naming the filter field at fault, if any.
type requestError struct {
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

func (e *requestError) body() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("ws: encode error frame: %v", err))
	}
	// Splice the members after seq: `,"field":...,"detail":...}`.
	return slices.Concat([]byte(`,`), b[1:])
}

func refuse(field, format string, args ...any) *requestError {
	return &requestError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Bounds of a filter's values. The message size limit bounds how many.
const (
	maxStationIDBytes = 128
	maxTypeBytes      = 128
)

// typeName is the shape of a versioned CloudEvents type tms uses, such as
// tms.position.reported.v1. Checking the shape catches typos and swapped
// fields; unknown but well-formed names are accepted so that clients may
// subscribe to types that are added later.
var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.v[0-9]+$`)

// filterFields lists a subscribe's members, in the order they are checked.
var filterFields = []string{"vehicles", "stations", "bbox", "types"}

// parseMessage reads one client message. The only message is subscribe.
func parseMessage(msg []byte) (*filter, *requestError) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(msg, &top); err != nil || top == nil {
		return nil, refuse("", `a message must be a JSON object such as {"subscribe": {...}}`)
	}
	raw, ok := top["subscribe"]
	if !ok || len(top) != 1 {
		keys := make([]string, 0, len(top))
		for k := range top {
			if k != "subscribe" {
				keys = append(keys, strconv.Quote(k))
			}
		}
		slices.Sort(keys)
		return nil, refuse("", `unknown message %s: the only message is {"subscribe": {...}}`, strings.Join(keys, ", "))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, refuse("subscribe", "must be an object of filters (vehicles, stations, bbox, types); {} selects everything")
	}
	var unknown []string
	for k := range fields {
		if !slices.Contains(filterFields, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, refuse(unknown[0], "unknown filter; the filters are %s", strings.Join(filterFields, ", "))
	}
	var spec Filter
	var err *requestError
	if spec.Vehicles, err = parsePlates(fields["vehicles"]); err != nil {
		return nil, err
	}
	if spec.Stations, err = parseStrings("stations", fields["stations"], normStation); err != nil {
		return nil, err
	}
	if spec.BBox, err = parseBBox(fields["bbox"]); err != nil {
		return nil, err
	}
	if spec.Types, err = parseStrings("types", fields["types"], normType); err != nil {
		return nil, err
	}
	return compile(spec), nil
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// parseStrings reads a non-empty array of strings, normalises each with
// norm and drops duplicates, keeping the first occurrence's place.
func parseStrings(field string, raw json.RawMessage, norm func(string) (string, error)) ([]string, *requestError) {
	if isNull(raw) {
		return nil, nil
	}
	var in []string
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, refuse(field, "must be an array of strings")
	}
	if len(in) == 0 {
		// An empty selection would silently mean "nothing" to some
		// clients and "everything" to others; make them say which.
		return nil, refuse(field, "is empty: omit %s to receive all of them", field)
	}
	out := make([]string, 0, len(in))
	for i, s := range in {
		n, err := norm(s)
		if err != nil {
			return nil, refuse(field, "%s[%d]: %v", field, i, err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func parsePlates(raw json.RawMessage) ([]string, *requestError) {
	return parseStrings("vehicles", raw, func(s string) (string, error) {
		p, rej := position.NormalizePlate("vehicles", s)
		if rej != nil {
			return "", fmt.Errorf("%s", rej.Detail)
		}
		return p, nil
	})
}

func normStation(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("the station id is empty")
	case len(s) > maxStationIDBytes || !utf8.ValidString(s):
		return "", fmt.Errorf("%q is not a station id", s)
	}
	return s, nil
}

func normType(s string) (string, error) {
	if len(s) > maxTypeBytes || !typeName.MatchString(s) {
		return "", fmt.Errorf("%q is not an event type such as tms.position.reported.v1", s)
	}
	return s, nil
}

func parseBBox(raw json.RawMessage) ([]float64, *requestError) {
	if isNull(raw) {
		return nil, nil
	}
	var b []float64
	if err := json.Unmarshal(raw, &b); err != nil || len(b) != 4 {
		return nil, refuse("bbox", "must be [minLng, minLat, maxLng, maxLat], four numbers")
	}
	minLng, minLat, maxLng, maxLat := b[0], b[1], b[2], b[3]
	switch {
	case minLng < -180 || minLng > 180 || maxLng < -180 || maxLng > 180:
		return nil, refuse("bbox", "longitudes must be within [-180, 180]")
	case minLat < -90 || minLat > 90 || maxLat < -90 || maxLat > 90:
		return nil, refuse("bbox", "latitudes must be within [-90, 90]")
	case minLat > maxLat:
		return nil, refuse("bbox", "minLat %v is above maxLat %v", minLat, maxLat)
	}
	return b, nil
}
