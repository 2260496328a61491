package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/station"
)

// allEvents is every event the schema tests build, of every type tms
// produces.
func allEvents(t *testing.T) []event.Envelope {
	t.Helper()
	out := append(positionEvents(t), letterEvents(t)...)
	for _, body := range stationBodies {
		out = append(out, upserted(t, body, 7))
	}
	deleted, err := station.DeletedEvent("/tms/api", "S001", 8, at)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, deleted)
	out = append(out, geofenceEvents(t)...)
	out = append(out, g7Events(t)...)
	return append(out, jobEvents(t)...)
}

// maxDecimals says how many decimals a number may carry, by the name of
// its field (for an array's elements, the array's), and whether the field
// is known at all: a number field this table does not know fails the test,
// so that a new one has to say here what it carries.
//
//   - Coordinates: 7 decimals (about 1 cm). Positions and stations carry
//     them as given (the inputs here have at most 7); the geofence rounds
//     its interpolated points, the jobs their reference points, and a
//     GCJ-02 station's converted ones are rounded.
//   - Distances (a name ending in _m): metres to one decimal.
//   - Durations (_s): a job's to one decimal; the geofence's dwell and gap,
//     and a station's detection windows, to the millisecond.
//   - As given by a client or a device, whatever it sent: speed, course,
//     weight. Counts, versions, revisions and indexes: integers.
func maxDecimals(typ string, field string) (int, bool) {
	switch {
	case field == "lat" || field == "lng" || field == "end_lat" || field == "end_lng" || field == "coordinates":
		return 7, true
	case strings.HasSuffix(field, "_m"):
		return 1, true
	case strings.HasSuffix(field, "_s") && strings.HasPrefix(typ, "tms.job."):
		return 1, true
	case strings.HasSuffix(field, "_s"):
		return 3, true
	}
	switch field {
	case "speed_kmh", "course_deg", "weight_kg", "g7_seconds":
		return -1, true // as given
	case "version", "station_version", "revision", "index", "from_stop", "to_stop", "fixes_used", "fixes_dropped",
		"count", "counts", "bytes", "enter_confirm_fixes", "exit_confirm_fixes":
		return 0, true
	}
	return 0, false
}

// timeLike is a string that means to be a date-time; timeOK the form
// every time on tms's topics takes: RFC 3339 in UTC, at most milliseconds.
var (
	timeLike = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T`)
	timeOK   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?Z$`)
)

// decimals counts the decimals of a JSON number as written: 1.25 has 2,
// 1e-07 has 7, 1.5e3 none.
func decimals(n json.Number) int {
	s := strings.ToLower(string(n))
	mant, exp, _ := strings.Cut(s, "e")
	frac := 0
	if _, f, ok := strings.Cut(mant, "."); ok {
		frac = len(f)
	}
	e := 0
	if exp != "" {
		_, _ = fmt.Sscan(exp, &e)
	}
	return max(frac-e, 0)
}

// numberProblems walks an encoded event and reports each number with more
// decimals than its field allows, each field it does not know, and each
// time not in tms's form.
func numberProblems(typ string, raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	var walk func(path, field string, v any)
	walk = func(path, field string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				f := k
				if field == "counts" || field == "distance_m" {
					f = field // counts by reason, distances by kind
				}
				walk(path+"."+k, f, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), field, e)
			}
		case json.Number:
			allowed, known := maxDecimals(typ, field)
			switch {
			case !known:
				problems = append(problems, fmt.Sprintf("%s = %s: a number field the test does not know", path, x))
			case allowed >= 0 && decimals(x) > allowed:
				problems = append(problems, fmt.Sprintf("%s = %s: more than %d decimals", path, x, allowed))
			}
		case string:
			if timeLike.MatchString(x) && !timeOK.MatchString(x) {
				problems = append(problems, fmt.Sprintf("%s = %s: not RFC 3339 in UTC to the millisecond", path, x))
			}
		}
	}
	walk("", "", v)
	return problems
}

// TestEventsCarryTheNumbersAConsumerExpects walks every event the schema
// tests build (positions, dead letters, stations, geofence, jobs and job
// commands) and fails on a number with more decimals than its field
// allows (an interpolated 121.40700000000001, a dwell of
// 1.2389999999999999 s) or a time with more than milliseconds.
func TestEventsCarryTheNumbersAConsumerExpects(t *testing.T) {
	t.Parallel()
	types := map[string]bool{}
	for _, e := range allEvents(t) {
		types[e.Type] = true
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range numberProblems(e.Type, raw) {
			t.Errorf("%s %s: %s", e.Type, e.ID, p)
		}
	}
	if len(types) < 16 {
		t.Errorf("only %d event types walked: %v", len(types), types)
	}
}

// TestTheNumberWalkerFindsWhatItLooksFor guards the walker itself.
func TestTheNumberWalkerFindsWhatItLooksFor(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]int{
		`{"time":"2026-12-01T06:00:00.125Z","data":{"lat":31.1234567,"lng":1e-7,"distance_dropped_m":12.5,"dwell_s":1.239}}`: 0,
		`{"data":{"lng":121.40700000000001}}`:                          1,
		`{"data":{"lat":1.5e-8}}`:                                      1,
		`{"data":{"legs":[{"driven_m":12.25}]}}`:                       1,
		`{"data":{"gap_s":1.2389999999999999}}`:                        1,
		`{"data":{"stops":[{"dwell_s":1.25}]}}`:                        0, // not a job event: see below
		`{"data":{"price":1}}`:                                         1,
		`{"time":"2026-12-01T06:00:00.123456789Z"}`:                    1,
		`{"data":{"received_at":"2026-12-01T14:00:00+08:00"}}`:         1,
		`{"data":{"geometry":{"coordinates":[[[121.123456789,31]]]}}}`: 1,
	} {
		if got := len(numberProblems("tms.vehicle.exited_station.v1", []byte(raw))); got != want {
			t.Errorf("%s: %d problems, want %d", raw, got, want)
		}
	}
	if got := numberProblems("tms.job.completed.v1", []byte(`{"data":{"stops":[{"dwell_s":1.25}]}}`)); len(got) != 1 {
		t.Errorf("a job's dwell of 1.25 s: %v", got)
	}
}
