// Package hostile holds the G7 messages of the hostile-input suite: what
// someone who can publish to the position feed might send to stop ingest,
// flood Kafka or exhaust memory, each with the dead letters tms must make
// of it. The ingest package's tests and the end-to-end tests on the tms
// binary publish the same messages, so that both prove the same thing.
package hostile

import (
	"fmt"
	"strings"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/position"
)

// Message is one hostile message and what ingest makes of it at the
// default limits (1 MiB packets, 10,000 items, 100 letters a message).
type Message struct {
	Name    string
	Payload []byte
	// Letters counts the dead letters it gives, by reason.
	Letters map[string]int
	// Counts are the Count of its summary letters, by reason.
	Counts map[string]int
	// Positions counts the fixes it holds that are accepted.
	Positions int
	// Oversized says the message is larger than the default packet limit:
	// a subscriber discards it unread (its letter has no raw bytes), the
	// parser refuses it whole.
	Oversized bool
}

// Huge is the size of the huge values: a few hundred kilobytes, which
// JSON escaping of '<' (\u003c) makes six times larger. Two of them fit
// in a message under the old limit of 512 KiB, so that each message
// reached the code it attacks before the limits too.
const Huge = 250_000

// Messages returns the hostile messages, in the order the suite sends
// them. Plates of accepted fixes start with "沪H".
func Messages() []Message {
	huge := func(s string) string { return strings.Repeat(s, Huge/len(s)) }
	item := func(plate, extra string) string {
		return `{"plateNum":"` + plate + `","lng":121.4737,"lat":31.2304,"speed":10` + extra + `}`
	}
	batch := func(items ...string) []byte { return []byte(`{"data":[` + strings.Join(items, ",") + `]}`) }
	ones := "[" + strings.TrimSuffix(strings.Repeat("1,", 262_000), ",") + "]"
	bad := make([]string, 5000)
	for i := range bad {
		bad[i] = fmt.Sprintf(`{"plateNum":"沪B%05d","lng":121.4737,"lat":95,"speed":10}`, i)
	}
	return []Message{{
		// The message of issue 7: its plate, copied whole into the
		// letter's vehicle, subject and key, made a record of 3.6 MB.
		Name:    "plate of 250 KB of '<'",
		Payload: batch(item(huge("<"), "")),
		Letters: map[string]int{position.ReasonInvalidPlate: 1},
	}, {
		Name:    "plate of 250 KB of invalid UTF-8",
		Payload: batch(item(huge("\xff\xfe"), "")),
		Letters: map[string]int{position.ReasonInvalidPlate: 1},
	}, {
		// A huge value the fix does not need is dropped; one where a
		// number belongs is rejected with a bounded detail and excerpt.
		Name:      "huge fields other than the plate",
		Payload:   batch(item("沪H00001", `,"note":"`+huge("<")+`"`), item("沪H00002", `,"course":"`+huge("<")+`"`)),
		Letters:   map[string]int{position.ReasonInvalidNumber: 1},
		Positions: 1,
	}, {
		Name:    "number of 250 KB of digits",
		Payload: []byte(`{"data":[{"plateNum":"沪H00003","lng":121.4737,"lat":` + huge("9") + `,"speed":10}]}`),
		Letters: map[string]int{position.ReasonNotFinite: 1},
	}, {
		Name:    "nesting 100,000 deep",
		Payload: []byte(`{"data":[` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `]}`),
		Letters: map[string]int{position.ReasonInvalidJSON: 1},
	}, {
		Name:      "payload of 10 MB",
		Payload:   batch(item("沪H00004", `,"note":"`+strings.Repeat("x", 10<<20)+`"`)),
		Letters:   map[string]int{position.ReasonTooLarge: 1},
		Oversized: true,
	}, {
		// 262,000 items: before the item limit, as many dead letters.
		Name:    "array of 500 KB of 1s",
		Payload: []byte(ones),
		Letters: map[string]int{position.ReasonInvalidJSON: 100, deadletter.ReasonTooManyRejections: 1, deadletter.ReasonTooManyItems: 1},
		Counts:  map[string]int{deadletter.ReasonTooManyRejections: 9_900, deadletter.ReasonTooManyItems: 262_000 - 10_000},
	}, {
		Name:    "5,000 bad items",
		Payload: batch(bad...),
		Letters: map[string]int{position.ReasonLatOutOfRange: 100, deadletter.ReasonTooManyRejections: 1},
		Counts:  map[string]int{deadletter.ReasonTooManyRejections: 4_900},
	}}
}
