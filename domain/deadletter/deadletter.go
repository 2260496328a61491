// Package deadletter describes input tms could not accept: the reason, the
// field at fault, where it came from and an excerpt of its raw bytes,
// published as tms.input.rejected.v1 events on tms.deadletter so that
// nothing is lost silently and an operator can inspect or replay it.
//
// Input is written by whoever can publish to the feed, so a letter copies
// nothing from it unbounded: every string taken from input (the vehicle,
// the field, the origin, the detail, the raw excerpt, a refused record's
// key and topic) is cut to a bound of its own on a UTF-8 boundary, and the
// letter says when it was cut. The encoded event of any letter, however
// hostile its input, is therefore at most MaxEventBytes, which is far
// below what a Kafka record may hold: a letter is never refused for its
// size. See docs/security.md, "Ingest (MQTT)".
package deadletter

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/event"
)

// TypeRejected is the event type of a dead letter.
const TypeRejected = "tms.input.rejected.v1"

// Letter is the data of a tms.input.rejected.v1 event.
type Letter struct {
	// Stage is the tms stage that rejected the input (ingest, geofence...).
	Stage string `json:"stage"`
	// Origin says where the input came from, e.g. "mqtt:<topic>".
	Origin string `json:"origin"`
	// Reason is a stable reason code, e.g. latitude_out_of_range.
	Reason string `json:"reason"`
	// Field names the offending field in the input's own naming.
	Field string `json:"field,omitempty"`
	// Detail explains the rejection to a person.
	Detail string `json:"detail"`
	// Vehicle is the plate as given, when it could be read, cut to
	// MaxVehicleBytes (see WithVehicle). It is also the event's subject
	// and the record's key.
	Vehicle string `json:"vehicle,omitempty"`
	// VehicleTruncated says Vehicle holds only the start of the plate.
	VehicleTruncated bool `json:"vehicle_truncated,omitempty"`
	// Index is the item's position in its batch, when it came in one.
	Index *int `json:"index,omitempty"`
	// BatchSHA256 identifies the whole message an item came in, so that
	// the items of one message can be told apart from equal items of
	// another.
	BatchSHA256 string `json:"batch_sha256,omitempty"`
	// ReceivedAt is when tms received the input.
	ReceivedAt time.Time `json:"received_at"`
	// Raw is the start of the input as received (at most MaxRawBytes of
	// it), as text when it is valid UTF-8 and otherwise base64
	// (RawEncoding says which).
	Raw         string `json:"raw"`
	RawEncoding string `json:"raw_encoding"`
	// RawSHA256 identifies the whole raw input; it also keys the event id.
	RawSHA256 string `json:"raw_sha256"`
	// RawTruncated says Raw holds only the start of the input.
	RawTruncated bool `json:"raw_truncated,omitempty"`
	// Count is how many items a summary letter stands for: the items past
	// a message's item limit (too_many_items), or the rejected items past
	// its letter limit (too_many_rejections).
	Count int `json:"count,omitempty"`
	// Counts breaks Count down by reason (too_many_rejections).
	Counts map[string]int `json:"counts,omitempty"`
	// Refused describes a record Kafka refused, which this letter
	// replaces (reason record_refused).
	Refused *Refused `json:"refused,omitempty"`
}

// Refused describes a record Kafka refused to store.
type Refused struct {
	// Topic and Key are the refused record's (the key cut to
	// MaxVehicleBytes).
	Topic string `json:"topic"`
	Key   string `json:"key,omitempty"`
	// Bytes is the size of the record's value.
	Bytes int `json:"bytes"`
	// Error is Kafka's name for the refusal, e.g. MESSAGE_TOO_LARGE.
	Error string `json:"error"`
}

// Reason codes of the letters this package builds itself. The reasons of
// rejected positions are in package position.
const (
	// ReasonRecordRefused: Kafka refused a record tms made from the input
	// (too large, invalid); this letter stands in for it.
	ReasonRecordRefused = "record_refused"
	// ReasonTooManyItems: a message had more items than the limit; the
	// rest were not read, and one letter counts them.
	ReasonTooManyItems = "too_many_items"
	// ReasonTooManyRejections: a message had more rejected items than get
	// a letter of their own; one letter counts the rest by reason.
	ReasonTooManyRejections = "too_many_rejections"
)

// Bounds of what a letter copies from its input, in bytes. Strings are
// cut on a UTF-8 boundary.
const (
	// MaxVehicleBytes bounds the vehicle (also the subject and the key).
	// Every valid plate (16 characters of at most 4 bytes) fits.
	MaxVehicleBytes = 64
	// MaxFieldBytes bounds the field, the stage, the reason, a refusal's
	// error name and each key of Counts.
	MaxFieldBytes = 64
	// MaxOriginBytes bounds the origin (an MQTT topic, chosen by the
	// publisher), a refused record's topic and the event's source.
	MaxOriginBytes = 256
	// MaxDetailBytes bounds the detail.
	MaxDetailBytes = 512
	// MaxRawBytes bounds the raw excerpt: enough for any real G7 item
	// several times over, and for the start of a whole message. JSON
	// escaping can make it six times larger in the event ('<' becomes
	// \u003c), which MaxEventBytes accounts for.
	MaxRawBytes = 4 << 10
	// MaxCounts bounds the reasons in Counts; a summary has one per
	// reason code, far fewer.
	MaxCounts = 32
)

// Worst-case JSON sizes: a string of n bytes encodes in at most 6n+2
// (every byte a \u00XX escape, and the quotes); an integer in 20.
const (
	maxIntJSON = 20
	// fixedJSON is the envelope and data without their variable values:
	// every attribute and field name, the quotes and separators, the
	// type, the content type, the id (a UUID), both times (RFC 3339 with
	// nanoseconds), the two hashes, the encoding and the booleans. It is
	// about 600 bytes; the rest is margin.
	fixedJSON = 1024
)

// MaxEventBytes bounds the JSON encoding of the event of any letter,
// whatever its input: Event never returns a larger one. Kafka's default
// limit on a record is 1 MiB.
const MaxEventBytes = fixedJSON +
	2*(6*MaxVehicleBytes+2) + // data.vehicle and the subject
	4*(6*MaxFieldBytes+2) + // stage, reason, field, refused.error
	3*(6*MaxOriginBytes+2) + // origin, source, refused.topic
	(6*MaxVehicleBytes + 2) + // refused.key
	(6*MaxDetailBytes + 2) +
	(6*MaxRawBytes + 2) + // text raw; base64 is smaller (4/3)
	4*maxIntJSON + // index, count, refused.bytes, the counts' braces
	MaxCounts*(6*MaxFieldBytes+2+1+maxIntJSON+1) // "reason":count,

// New builds a Letter around raw, keeping at most MaxRawBytes of it; the
// other strings are cut to their bounds too.
func New(stage, origin, reason, field, detail string, raw []byte, receivedAt time.Time) Letter {
	l := Letter{
		Stage: stage, Origin: origin, Reason: reason, Field: field, Detail: detail,
		ReceivedAt: receivedAt.UTC(), RawSHA256: Hash(raw),
	}
	l.setRaw(raw, MaxRawBytes)
	return l.bounded()
}

// setRaw keeps at most max bytes of raw, not splitting a rune that
// straddles the bound (which would make valid text look binary).
func (l *Letter) setRaw(raw []byte, max int) {
	excerpt := raw
	if len(excerpt) > max {
		excerpt, l.RawTruncated = raw[:boundary(raw, max)], true
	}
	if utf8.Valid(excerpt) {
		l.Raw, l.RawEncoding = string(excerpt), "utf-8"
	} else {
		l.Raw, l.RawEncoding = base64.StdEncoding.EncodeToString(excerpt), "base64"
	}
}

// WithVehicle sets the vehicle, cut to MaxVehicleBytes; VehicleTruncated
// says whether it was cut.
func (l Letter) WithVehicle(plate string) Letter {
	l.Vehicle, l.VehicleTruncated = Cut(plate, MaxVehicleBytes)
	return l
}

// InBatch records that the letter is item index of the message whose
// bytes hash to batchSHA256 (see Hash).
func (l Letter) InBatch(index int, batchSHA256 string) Letter {
	l.Index, l.BatchSHA256 = &index, batchSHA256
	return l
}

// Refusal builds the letter that stands in for a record Kafka refused
// (err is Kafka's name for the refusal): it names the record's topic, key
// and size, and keeps at most maxRefusedRawBytes of its value, so that it
// is small enough for any topic a record could be refused from. origin is
// the input the record was made from.
func Refusal(stage, origin, topic string, key, value []byte, kafkaErr string, receivedAt time.Time) Letter {
	k, _ := Cut(string(key), MaxVehicleBytes)
	l := Letter{
		Stage: stage, Origin: origin, Reason: ReasonRecordRefused,
		Detail: "Kafka refused the record made from this input (" + kafkaErr + ", " +
			strconv.Itoa(len(value)) + " bytes for " + topic + "); this letter stands in for it",
		ReceivedAt: receivedAt.UTC(), RawSHA256: Hash(value),
		Refused: &Refused{Topic: topic, Key: k, Bytes: len(value), Error: kafkaErr},
	}
	l.setRaw(value, maxRefusedRawBytes)
	return l.WithVehicle(string(key)).bounded()
}

// maxRefusedRawBytes bounds the excerpt of a refused record: a position
// record fits whole, a refused letter shows its start.
const maxRefusedRawBytes = 512

// Summary builds a letter that counts items instead of carrying each:
// reason is ReasonTooManyItems or ReasonTooManyRejections, counts the
// items by reason (nil for too_many_items), raw the whole message.
func Summary(stage, origin, reason, detail string, count int, counts map[string]int, raw []byte, receivedAt time.Time) Letter {
	l := New(stage, origin, reason, "", detail, raw, receivedAt)
	l.Count, l.Counts = count, counts
	return l.bounded()
}

// Discarded builds a letter for input that was discarded unread (an MQTT
// message larger than the packet limit): it carries no raw bytes, only
// their hash, rawSHA256 (hex, as Hash gives it).
func Discarded(stage, origin, reason, detail, rawSHA256 string, receivedAt time.Time) Letter {
	return Letter{
		Stage: stage, Origin: origin, Reason: reason, Detail: detail,
		ReceivedAt: receivedAt.UTC(), RawEncoding: "utf-8", RawSHA256: rawSHA256, RawTruncated: true,
	}.bounded()
}

// Hash is the hex SHA-256 of raw, as the letters carry it.
func Hash(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Event encodes the letter, cut to its bounds, so at most MaxEventBytes
// when source has at most MaxOriginBytes. Its id is derived from the
// stage, origin, reason, raw bytes and place in a batch, not from the
// receive time, so the same bad input redelivered gives the same id. Its
// time is the receive time, as bad input has no event time to trust.
func (l Letter) Event(source string) (event.Envelope, error) {
	l = l.bounded()
	// To the millisecond, as every time on tms's topics: the receive time
	// comes from a clock with nanoseconds nobody needs.
	l.ReceivedAt = l.ReceivedAt.UTC().Truncate(time.Millisecond)
	source, _ = Cut(source, MaxOriginBytes)
	idx := ""
	if l.Index != nil {
		idx = strconv.Itoa(*l.Index)
	}
	return event.New(TypeRejected, source, l.Vehicle, l.ReceivedAt, l,
		l.Stage, l.Origin, l.Reason, l.RawSHA256, l.BatchSHA256, idx)
}

// bounded cuts every string of l to its bound. Cutting a cut string
// changes nothing, so New, the builders and Event may all call it.
func (l Letter) bounded() Letter {
	var cut bool
	l.Vehicle, cut = Cut(l.Vehicle, MaxVehicleBytes)
	l.VehicleTruncated = l.VehicleTruncated || cut
	l.Stage = mark(Cut(l.Stage, MaxFieldBytes))
	l.Reason = mark(Cut(l.Reason, MaxFieldBytes))
	l.Field = mark(Cut(l.Field, MaxFieldBytes))
	l.Origin = mark(Cut(l.Origin, MaxOriginBytes))
	l.Detail = mark(Cut(l.Detail, MaxDetailBytes))
	if len(l.BatchSHA256) > sha256.Size*2 {
		l.BatchSHA256 = l.BatchSHA256[:sha256.Size*2]
	}
	if len(l.RawSHA256) > sha256.Size*2 {
		l.RawSHA256 = l.RawSHA256[:sha256.Size*2]
	}
	if l.RawEncoding != "base64" {
		l.RawEncoding = "utf-8"
	}
	if max := base64.StdEncoding.EncodedLen(MaxRawBytes); l.RawEncoding == "base64" && len(l.Raw) > max {
		l.Raw, l.RawTruncated = l.Raw[:max], true
	} else if l.RawEncoding == "utf-8" {
		var cut bool
		l.Raw, cut = Cut(l.Raw, MaxRawBytes)
		l.RawTruncated = l.RawTruncated || cut
	}
	if len(l.Counts) > 0 {
		counts := make(map[string]int, min(len(l.Counts), MaxCounts))
		for _, k := range slices.Sorted(maps.Keys(l.Counts)) {
			if len(counts) == MaxCounts {
				break
			}
			ck, _ := Cut(k, MaxFieldBytes)
			counts[ck] += l.Counts[k]
		}
		l.Counts = counts
	}
	if l.Refused != nil {
		r := *l.Refused
		r.Topic = mark(Cut(r.Topic, MaxOriginBytes))
		r.Key, _ = Cut(r.Key, MaxVehicleBytes)
		r.Error = mark(Cut(r.Error, MaxFieldBytes))
		l.Refused = &r
	}
	return l
}

// ellipsis marks a string that was cut.
const ellipsis = "…"

// mark ends a string that Cut shortened with an ellipsis, within the
// same bound.
func mark(s string, cut bool) string {
	if !cut || len(s) < len(ellipsis) {
		return s
	}
	s, _ = Cut(s, len(s)-len(ellipsis))
	return s + ellipsis
}

// Cut returns s as valid UTF-8 (invalid bytes become U+FFFD) of at most
// max bytes, cut on a rune boundary, and whether anything was cut off. It
// reads no more of s than the bound needs, whatever s's length.
func Cut(s string, max int) (string, bool) {
	if max <= 0 {
		return "", s != ""
	}
	if len(s) <= max && utf8.ValidString(s) {
		return s, false
	}
	cut := len(s) > max
	head := s
	if cut {
		head = s[:boundary(s, max)]
	}
	head = strings.ToValidUTF8(head, string(utf8.RuneError))
	for len(head) > max {
		_, size := utf8.DecodeLastRuneInString(head)
		head = head[:len(head)-size]
		cut = true
	}
	return head, cut
}

// boundary is where to cut s (longer than max) to keep at most max bytes:
// max, or the start of a valid rune that straddles it.
func boundary[T string | []byte](s T, max int) int {
	i := max
	for i > 0 && max-i < utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
	if (r != utf8.RuneError || size > 1) && i+size > max {
		return i
	}
	return max
}
