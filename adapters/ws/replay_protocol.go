package ws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// replayRequest is a parsed {"replay": {...}}: a vehicle with its window,
// or a trip or a job whose window the read models give.
type replayRequest struct {
	// id is the client's name for the replay; "" lets the hub name it.
	id       string
	vehicle  string
	from, to time.Time
	trip     string
	job      string
	speed    float64
}

// Replay controls.
const (
	opPause  = "pause"
	opResume = "resume"
	opSeek   = "seek"
	opSpeed  = "speed"
	opStop   = "stop"
)

// replayControl is a parsed pause, resume, seek, speed or stop.
type replayControl struct {
	op string
	id string
	// to is seek's target; speed is speed's.
	to    time.Time
	speed float64
}

// replayFields lists a replay's members, in the order they are checked.
var replayFields = []string{"id", "vehicle", "trip", "job", "from", "to", "speed"}

// maxIDBytes bounds a replay, trip or job id.
const maxIDBytes = 64

// idPattern is a replay, trip or job id: 1 to 64 letters, digits and
// _ . : - (a job's UUID is one).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

const replayExample = `{"vehicle": "沪A12345", "from": "2025-03-01T08:00:00Z", "to": "2025-03-01T09:00:00Z", "speed": 10}`

// parseReplay reads a replay's request. It checks the speed against
// lim.maxSpeed and a vehicle's window against lim.maxRange; a trip's or a
// job's window is checked once it is known.
func parseReplay(raw json.RawMessage, lim limits) (*replayRequest, *requestError) {
	fields, rerr := members("replay", raw, replayFields, "must be an object such as "+replayExample)
	if rerr != nil {
		return nil, rerr
	}
	r := &replayRequest{speed: 1}
	if v := fields["id"]; !isNull(v) {
		if r.id, rerr = parseID("id", v, "replay"); rerr != nil {
			return nil, rerr
		}
	}
	// Refusals after this name the replay the client named.
	named := func(e *requestError) *requestError {
		if e != nil {
			e.ReplayID = r.id
		}
		return e
	}
	var given []string
	for _, k := range []string{"vehicle", "trip", "job"} {
		if !isNull(fields[k]) {
			given = append(given, k)
		}
	}
	switch {
	case len(given) == 0:
		return nil, named(refuse("replay", "says what to replay: a vehicle (with from and to), a trip or a job, as in "+replayExample))
	case len(given) > 1:
		return nil, named(refuse(given[1], "give one of vehicle, trip and job, not %s and %s", given[0], given[1]))
	}
	switch given[0] {
	case "vehicle":
		var s *string
		if err := json.Unmarshal(fields["vehicle"], &s); err != nil || s == nil {
			return nil, named(refuse("vehicle", "must be a plate (a string)"))
		}
		p, wrong := normPlate(*s)
		if wrong != "" {
			return nil, named(refuse("vehicle", "%s", wrong))
		}
		r.vehicle = p
		if r.from, rerr = parseTime("from", fields["from"]); rerr != nil {
			return nil, named(rerr)
		}
		if r.to, rerr = parseTime("to", fields["to"]); rerr != nil {
			return nil, named(rerr)
		}
		if rerr = checkWindow("to", r.from, r.to, lim.maxRange); rerr != nil {
			return nil, named(rerr)
		}
	default:
		id, rerr := parseID(given[0], fields[given[0]], given[0])
		if rerr != nil {
			return nil, named(rerr)
		}
		if given[0] == "trip" {
			r.trip = id
		} else {
			r.job = id
		}
		for _, k := range []string{"from", "to"} {
			if !isNull(fields[k]) {
				return nil, named(refuse(k, "a %s is replayed over its own window: leave from and to out", given[0]))
			}
		}
	}
	if v := fields["speed"]; !isNull(v) {
		if r.speed, rerr = parseSpeed(v, lim.maxSpeed); rerr != nil {
			return nil, named(rerr)
		}
	}
	return r, nil
}

// parseControl reads pause, resume and stop ({"pause": "r1"}), seek
// ({"seek": {"id": "r1", "to": "..."}}) and speed ({"speed": {"id": "r1",
// "speed": 30}}).
func parseControl(op string, raw json.RawMessage, lim limits) (*replayControl, *requestError) {
	c := &replayControl{op: op}
	var rerr *requestError
	switch op {
	case opPause, opResume, opStop:
		if c.id, rerr = parseID(op, raw, "replay"); rerr != nil {
			return nil, rerr
		}
		return c, nil
	}
	second := "to"
	example := `{"seek": {"id": "r1", "to": "2025-03-01T08:30:00Z"}}`
	if op == opSpeed {
		second, example = "speed", `{"speed": {"id": "r1", "speed": 30}}`
	}
	fields, rerr := members(op, raw, []string{"id", second}, "must be an object such as "+example)
	if rerr != nil {
		return nil, rerr
	}
	if isNull(fields["id"]) {
		return nil, refuse("id", "is required: the id of the replay, as in %s", example)
	}
	if c.id, rerr = parseID("id", fields["id"], "replay"); rerr != nil {
		return nil, rerr
	}
	if op == opSpeed {
		if isNull(fields["speed"]) {
			rerr = refuse("speed", "is required: a number from 1 to %s", formatSpeed(lim.maxSpeed))
		} else {
			c.speed, rerr = parseSpeed(fields["speed"], lim.maxSpeed)
		}
	} else {
		c.to, rerr = parseTime("to", fields["to"])
	}
	if rerr != nil {
		rerr.ReplayID = c.id
		return nil, rerr
	}
	return c, nil
}

// members reads an object whose members must be among known; an unknown
// one is refused by name (the first in order).
func members(field string, raw json.RawMessage, known []string, notObject string) (map[string]json.RawMessage, *requestError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, refuse(field, "%s", notObject)
	}
	var unknown []string
	for k := range fields {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, refuse(unknown[0], "unknown member %s of %s; its members are %s", excerpt(unknown[0]), field, strings.Join(known, ", "))
	}
	return fields, nil
}

// parseID reads an id (of what: a replay, trip or job) given as field.
func parseID(field string, raw json.RawMessage, what string) (string, *requestError) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		return "", refuse(field, "must be a %s id (a string)", what)
	}
	if !idPattern.MatchString(*s) {
		return "", refuse(field, "%s is not a %s id: 1 to %d letters A-Z and a-z, digits and _ . : -", excerpt(*s), what, maxIDBytes)
	}
	return *s, nil
}

// parseTime reads a required RFC 3339 time.
func parseTime(field string, raw json.RawMessage) (time.Time, *requestError) {
	if isNull(raw) {
		return time.Time{}, refuse(field, "is required: a time such as 2025-03-01T08:00:00Z (RFC 3339)")
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		return time.Time{}, refuse(field, "must be a time such as 2025-03-01T08:00:00Z (RFC 3339, a string)")
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, refuse(field, "%s is not a time such as 2025-03-01T08:00:00Z (RFC 3339)", excerpt(*s))
	}
	return t.UTC(), nil
}

// checkWindow refuses a window [from, to) that is empty or longer than
// maxRange, naming field.
func checkWindow(field string, from, to time.Time, maxRange time.Duration) *requestError {
	if !to.After(from) {
		return refuse(field, "must be after from")
	}
	// The difference of two times far apart saturates at the largest
	// Duration, which is past any limit.
	if d := to.Sub(from); d > maxRange {
		return refuse(field, "the window spans %s, more than the %s a replay may: replay it in parts", span(d), span(maxRange))
	}
	return nil
}

// span formats a window's length in hours (and days past two).
func span(d time.Duration) string {
	h := d.Hours()
	if h >= 48 {
		return fmt.Sprintf("%.1f days", h/24)
	}
	return fmt.Sprintf("%.2f h", h)
}

// parseSpeed reads a speed: a number from 1 to maxSpeed, times real time.
func parseSpeed(raw json.RawMessage, maxSpeed float64) (float64, *requestError) {
	var v *float64
	if err := json.Unmarshal(raw, &v); err != nil || v == nil || math.IsNaN(*v) || *v < 1 || *v > maxSpeed {
		return 0, refuse("speed", "must be a number from 1 to %s: how many times faster than real time to replay", formatSpeed(maxSpeed))
	}
	return *v, nil
}

func formatSpeed(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Bodies of the replay frames (after their seq).

// replayStartedBody answers a replay: its id and what it replays, the
// window [from, to) and the speed.
func replayStartedBody(r *replay) []byte {
	return encodeBody(struct {
		ID      string    `json:"replay_id"`
		Vehicle string    `json:"vehicle"`
		Trip    string    `json:"trip,omitempty"`
		Job     string    `json:"job,omitempty"`
		From    time.Time `json:"from"`
		To      time.Time `json:"to"`
		Speed   float64   `json:"speed"`
	}{r.id, r.q.Vehicle, r.trip, r.job, r.q.From.UTC(), r.q.To.UTC(), r.speed})
}

// Replay states.
const (
	statePlaying = "playing"
	statePaused  = "paused"
)

// replayStateBody answers a control: the replay's state, speed, and where
// it is in event time.
func replayStateBody(r *replay, at time.Time) []byte {
	state := statePlaying
	if r.paused {
		state = statePaused
	}
	return encodeBody(struct {
		ID    string    `json:"replay_id"`
		State string    `json:"state"`
		Speed float64   `json:"speed"`
		At    time.Time `json:"at"`
	}{r.id, state, r.speed, at.UTC()})
}

// Why a replay ended.
const (
	endCompleted = "completed"
	endStopped   = "stopped"
	endFailed    = "failed"
)

// replayEndedTail is what a replay_ended frame has after its frame count.
func replayEndedTail(reason, detail string) []byte {
	b := encodeBody(struct {
		Reason string `json:"reason"`
		Detail string `json:"detail,omitempty"`
	}{reason, detail})
	return b
}

// replayFrameBody is the body of a replay's frame of kind k after its
// seq: for a replayed event, its id, its replay_seq n and the envelope
// (payload); for its end, its id, the frames it sent and the tail
// (payload); for a state, payload as it is.
func replayFrameBody(k frameKind, id string, n uint64, payload []byte) []byte {
	switch k {
	case kindReplay:
		b := make([]byte, 0, len(payload)+len(id)+48)
		b = append(b, `,"replay_id":"`...)
		b = append(b, id...) // an id is letters, digits and _ . : -: nothing to escape
		b = append(b, `","replay_seq":`...)
		b = strconv.AppendUint(b, n, 10)
		b = append(b, `,"event":`...)
		b = append(b, payload...)
		return append(b, '}')
	case kindReplayEnded:
		b := make([]byte, 0, len(payload)+len(id)+40)
		b = append(b, `,"replay_id":"`...)
		b = append(b, id...)
		b = append(b, `","frames":`...)
		b = strconv.AppendUint(b, n, 10)
		return append(b, payload...)
	}
	return payload
}

// encodeBody encodes v, an object, as a frame body: its members after
// the seq.
func encodeBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ws: encode frame: %v", err)) // strings, finite numbers and times
	}
	return append([]byte{','}, bytes.TrimPrefix(b, []byte{'{'})...)
}
