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
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Frame types: the "type" member of every frame the server sends.
const (
	// FrameSubscribed acknowledges a subscribe with a summary of its
	// normalised filter: the bbox, the short lists, and how many entries
	// each list has.
	FrameSubscribed = "subscribed"
	// FrameSnapshot carries the latest position of every vehicle the
	// filter selects, up to the hub's row and byte limits; a cut one says
	// so with "truncated": true.
	FrameSnapshot = "snapshot"
	// FrameEvent carries one event, its CloudEvents envelope as it is on
	// the topic.
	FrameEvent = "event"
	// FrameError refuses a client message; the connection stays open.
	FrameError = "error"
	// FrameReplayStarted answers a replay message: the replay's id, and
	// what it replays.
	FrameReplayStarted = "replay_started"
	// FrameReplay carries one replayed event, its CloudEvents envelope
	// rebuilt from the read models, with the replay's id and the frame's
	// place in it (replay_seq).
	FrameReplay = "replay"
	// FrameReplayState answers pause, resume, seek and speed: the
	// replay's state and where it is in event time.
	FrameReplayState = "replay_state"
	// FrameReplayEnded is a replay's last frame: it reached its end, was
	// stopped, or failed.
	FrameReplayEnded = "replay_ended"
)

// Filter selects the events a connection receives. It is the body of the
// client's {"subscribe": {...}} message and is summarised, normalised, in
// the subscribed frame (lists longer than ten entries are counted there,
// not repeated). An absent (or null) field does not filter; the fields
// given must all match. Each list has at most Config.MaxFilterEntries
// entries.
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
	kindReplayStarted
	kindReplay
	kindReplayState
	kindReplayEnded
	numKinds
)

var kindNames = [numKinds]string{FrameSubscribed, FrameSnapshot, FrameEvent, FrameError,
	FrameReplayStarted, FrameReplay, FrameReplayState, FrameReplayEnded}

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

// maxEchoedEntries is the longest filter list the subscribed frame
// repeats; a longer one is only counted, so that a reply never grows with
// what the client sent. With the bounds on each entry (a plate is at most
// 16 characters, a station id 64 bytes, a type 128 bytes), the subscribed
// frame stays under maxSubscribedFrameBytes.
const maxEchoedEntries = 10

// maxSubscribedFrameBytes bounds a subscribed frame (the fuzz target
// checks it).
const maxSubscribedFrameBytes = 4 << 10

// FilterCounts is how many distinct entries each list of a subscribe
// holds (after normalisation and deduplication); the lists not given are
// absent.
type FilterCounts struct {
	Vehicles int `json:"vehicles,omitempty"`
	Stations int `json:"stations,omitempty"`
	Types    int `json:"types,omitempty"`
}

// subscribedBody is the body of the subscribed frame for f: a summary of
// the filter in force. bbox is repeated; a list is repeated only when it
// has at most maxEchoedEntries entries; counts gives every list's size.
func subscribedBody(f *Filter) []byte {
	short := func(l []string) []string {
		if len(l) > maxEchoedEntries {
			return nil
		}
		return l
	}
	summary := Filter{Vehicles: short(f.Vehicles), Stations: short(f.Stations), BBox: f.BBox, Types: short(f.Types)}
	counts := FilterCounts{Vehicles: len(f.Vehicles), Stations: len(f.Stations), Types: len(f.Types)}
	fb, err := json.Marshal(summary)
	if err != nil {
		panic(fmt.Sprintf("ws: encode filter: %v", err)) // strings and finite floats always encode
	}
	cb, err := json.Marshal(counts)
	if err != nil {
		panic(fmt.Sprintf("ws: encode filter counts: %v", err))
	}
	return slices.Concat([]byte(`,"filter":`), fb, []byte(`,"counts":`), cb, []byte(`}`))
}

// snapshotTailBytes is room kept in a snapshot's byte budget for what
// follows its vehicles: the truncation detail and the frame's end.
const snapshotTailBytes = 512

// snapshotBody is the body of the snapshot frame for vs (in plate order),
// cut so that it holds at most maxRows vehicles and is at most maxBytes
// long, whichever comes first. A cut snapshot says so: truncated, and a
// detail saying which limit cut it. The caller asks the read model for
// one row more than maxRows, so that a cut is known without counting.
func snapshotBody(vs []vehicles.Vehicle, maxRows, maxBytes int) []byte {
	const head = `,"vehicles":[`
	budget := maxBytes - snapshotTailBytes
	b := make([]byte, 0, max(0, min(budget, 200*min(len(vs), maxRows)))+len(head)+snapshotTailBytes)
	b = append(b, head...)
	rows := 0
	cut := ""
	for _, v := range vs {
		if rows == maxRows {
			cut = fmt.Sprintf("more than %d vehicles match the filter; these are the first %d by plate: "+
				"narrow the filter (vehicles, bbox), or page through GET /api/v1/vehicles", maxRows, rows)
			break
		}
		flags := v.Flags
		if flags == nil {
			flags = []string{}
		}
		row, err := json.Marshal(SnapshotVehicle{
			Plate: v.Plate, Lat: v.Lat, Lng: v.Lng, SpeedKmh: v.SpeedKmh, CourseDeg: v.CourseDeg,
			FixTime: v.FixTime.UTC(), ReceivedAt: v.ReceivedAt.UTC(), Flags: flags,
		})
		if err != nil {
			// Only a NaN or infinite coordinate fails to encode, and the
			// read model holds validated fixes only.
			panic(fmt.Sprintf("ws: encode snapshot: %v", err))
		}
		if len(b)+1+len(row) > budget {
			cut = fmt.Sprintf("the snapshot reached its size limit (%d bytes) after %d vehicles; these are the first by plate: "+
				"narrow the filter (vehicles, bbox), or page through GET /api/v1/vehicles", maxBytes, rows)
			break
		}
		if rows > 0 {
			b = append(b, ',')
		}
		b = append(b, row...)
		rows++
	}
	b = append(b, ']')
	if cut != "" {
		d, err := json.Marshal(cut)
		if err != nil {
			panic(fmt.Sprintf("ws: encode snapshot detail: %v", err))
		}
		b = append(b, `,"truncated":true,"detail":`...)
		b = append(b, d...)
	}
	return append(b, '}')
}

// requestError is a client message the hub refuses. It becomes an error
// frame naming the filter field at fault, if any, and the index of the
// entry at fault in a list. It never repeats the client's input whole:
// a detail quotes at most an excerpt (see excerpt), and body caps the
// field and the detail whatever they hold.
type requestError struct {
	Field string `json:"field,omitempty"`
	Index *int   `json:"index,omitempty"`
	// ReplayID names the replay a refused replay message is about, when
	// the message named one (a valid id: it is never an excerpt).
	ReplayID string `json:"replay_id,omitempty"`
	Detail   string `json:"detail"`
}

// Bounds of an error frame's members (the fuzz target checks them).
const (
	maxFieldBytes  = 32
	maxDetailBytes = 320
	// maxErrorFrameBytes bounds a whole error frame: the members above,
	// JSON-escaped at worst (6 bytes a byte), a replay id (which needs no
	// escaping), and the frame around them: under 2.5 KiB.
	maxErrorFrameBytes = 6*(maxFieldBytes+maxDetailBytes) + maxIDBytes + 160
)

func (e *requestError) body() []byte {
	capped := requestError{Field: clip(e.Field, maxFieldBytes), Index: e.Index, ReplayID: clip(e.ReplayID, maxIDBytes),
		Detail: clip(e.Detail, maxDetailBytes)}
	b, err := json.Marshal(capped)
	if err != nil {
		panic(fmt.Sprintf("ws: encode error frame: %v", err))
	}
	// Splice the members after seq: `,"field":...,"detail":...}`.
	return slices.Concat([]byte(`,`), b[1:])
}

func refuse(field, format string, args ...any) *requestError {
	return &requestError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// refuseEntry refuses entry i of the list field.
func refuseEntry(field string, i int, format string, args ...any) *requestError {
	return &requestError{Field: field, Index: &i, Detail: fmt.Sprintf("%s[%d]: ", field, i) + fmt.Sprintf(format, args...)}
}

// clip cuts s to at most n bytes at a character boundary, marking a cut
// with "…" (within the n). Invalid UTF-8 is replaced, so that the result
// encodes as it reads.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// maxExcerptBytes bounds a quoted excerpt of client input, quotes and
// escapes included.
const maxExcerptBytes = 32

// excerpt quotes s for a detail, Go-style, keeping at most
// maxExcerptBytes of the quoted form; a cut excerpt ends with "…" after
// its closing quote and says how long s was.
func excerpt(s string) string {
	b := []byte{'"'}
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		q := strconv.Quote(s[i : i+size])
		piece := q[1 : len(q)-1]
		if len(b)+len(piece)+1 > maxExcerptBytes {
			return string(b) + `"… (` + strconv.Itoa(len(s)) + ` bytes)`
		}
		b = append(b, piece...)
		i += size
	}
	return string(append(b, '"'))
}

// typeName is the shape of a versioned CloudEvents type tms uses, such as
// tms.position.reported.v1. Checking the shape catches typos and swapped
// fields; unknown but well-formed names are accepted so that clients may
// subscribe to types that are added later.
var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.v[0-9]+$`)

// maxTypeBytes bounds an event type name.
const maxTypeBytes = 128

// filterFields lists a subscribe's members, in the order they are checked.
var filterFields = []string{"vehicles", "stations", "bbox", "types"}

// messageNames are the client messages, each the one member of its JSON
// object.
var messageNames = []string{"subscribe", "replay", "pause", "resume", "seek", "speed", "stop"}

// limits are what parseMessage checks messages against.
type limits struct {
	// maxEntries caps each filter list.
	maxEntries int
	// maxSpeed caps a replay's speed; maxRange its window.
	maxSpeed float64
	maxRange time.Duration
}

// clientMessage is one parsed client message: exactly one member is set.
type clientMessage struct {
	subscribe *filter
	replay    *replayRequest
	control   *replayControl
}

// parseMessage reads one client message.
func parseMessage(msg []byte, lim limits) (clientMessage, *requestError) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(msg, &top); err != nil || len(top) == 0 {
		return clientMessage{}, refuse("", `a message must be a JSON object such as {"subscribe": {...}}`)
	}
	// Name one unknown member (the first in order, so the answer is the
	// same every time) and count the others.
	var unknown []string
	for k := range top {
		if !slices.Contains(messageNames, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		more := ""
		if len(unknown) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(unknown)-1)
		}
		return clientMessage{}, refuse("", `unknown message %s%s: the messages are {"subscribe": {...}}, {"replay": {...}}, `+
			`and pause, resume, seek, speed and stop of a replay`, excerpt(slices.Min(unknown)), more)
	}
	if len(top) > 1 {
		return clientMessage{}, refuse("", "a message has one member, the message's name; this one has %d", len(top))
	}
	for name, raw := range top {
		switch name {
		case "subscribe":
			f, err := parseSubscribe(raw, lim.maxEntries)
			return clientMessage{subscribe: f}, err
		case "replay":
			r, err := parseReplay(raw, lim)
			return clientMessage{replay: r}, err
		default:
			c, err := parseControl(name, raw, lim)
			return clientMessage{control: c}, err
		}
	}
	panic("unreachable")
}

// parseSubscribe reads a subscribe's filter. maxEntries caps each list.
func parseSubscribe(raw json.RawMessage, maxEntries int) (*filter, *requestError) {
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
		return nil, refuse(unknown[0], "unknown filter %s; the filters are %s", excerpt(unknown[0]), strings.Join(filterFields, ", "))
	}
	var spec Filter
	var err *requestError
	if spec.Vehicles, err = parseStrings("vehicles", fields["vehicles"], maxEntries, normPlate); err != nil {
		return nil, err
	}
	if spec.Stations, err = parseStrings("stations", fields["stations"], maxEntries, normStation); err != nil {
		return nil, err
	}
	if spec.BBox, err = parseBBox(fields["bbox"]); err != nil {
		return nil, err
	}
	if spec.Types, err = parseStrings("types", fields["types"], maxEntries, normType); err != nil {
		return nil, err
	}
	return compile(spec), nil
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// parseStrings reads a non-empty array of at most maxEntries strings,
// normalises each with norm (which returns what is wrong, without
// repeating the input) and drops duplicates, keeping the first
// occurrence's place. It reads the array one entry at a time and stops at
// the first entry past the cap, so that a long list costs no more than the
// cap; deduplication is by a set, linear in the entries.
func parseStrings(field string, raw json.RawMessage, maxEntries int, norm func(string) (string, string)) ([]string, *requestError) {
	if isNull(raw) {
		return nil, nil
	}
	notStrings := func() *requestError { return refuse(field, "must be an array of strings") }
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, notStrings()
	}
	var out []string
	seen := map[string]struct{}{}
	i := 0
	for ; dec.More(); i++ {
		if i == maxEntries {
			return nil, refuse(field, "has more than %d entries, the most a filter list may have: "+
				"subscribe to fewer, or to a bbox or to everything", maxEntries)
		}
		var s *string
		if err := dec.Decode(&s); err != nil || s == nil {
			return nil, refuseEntry(field, i, "must be a string")
		}
		n, wrong := norm(*s)
		if wrong != "" {
			return nil, refuseEntry(field, i, "%s", wrong)
		}
		if _, dup := seen[n]; !dup {
			seen[n] = struct{}{}
			out = append(out, n)
		}
	}
	if i == 0 {
		// An empty selection would silently mean "nothing" to some
		// clients and "everything" to others; make them say which.
		return nil, refuse(field, "is empty: omit %s to receive all of them", field)
	}
	return out, nil
}

// normPlate normalises a plate as ingest does.
func normPlate(s string) (string, string) {
	p, rej := position.NormalizePlate("vehicles", s)
	switch {
	case rej == nil:
		return p, ""
	case strings.TrimSpace(s) == "":
		return "", "the plate is empty"
	}
	// The rejection's own detail may quote the plate; say it here with an
	// excerpt instead.
	return "", excerpt(s) + " is not a plate: letters, digits and '-', as ingest accepts them"
}

func normStation(s string) (string, string) {
	s = strings.TrimSpace(s)
	if err := station.ValidateID("stations", s); err != nil {
		return "", excerpt(s) + " is not a station id: 1 to 64 letters A-Z and a-z, digits and _ . : -"
	}
	return s, ""
}

func normType(s string) (string, string) {
	if len(s) > maxTypeBytes || !typeName.MatchString(s) {
		return "", excerpt(s) + " is not an event type such as tms.position.reported.v1"
	}
	return s, ""
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
