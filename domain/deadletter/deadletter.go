// Package deadletter describes input tms could not accept: the reason, the
// field at fault, where it came from and its raw bytes, published as
// tms.input.rejected.v1 events on tms.deadletter so that nothing is lost
// silently and an operator can inspect or replay it.
package deadletter

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
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
	// Vehicle is the plate as given, when it could be read.
	Vehicle string `json:"vehicle,omitempty"`
	// Index is the item's position in its batch, when it came in one.
	Index *int `json:"index,omitempty"`
	// BatchSHA256 identifies the whole message an item came in, so that
	// the items of one message can be told apart from equal items of
	// another.
	BatchSHA256 string `json:"batch_sha256,omitempty"`
	// ReceivedAt is when tms received the input.
	ReceivedAt time.Time `json:"received_at"`
	// Raw is the input exactly as received, as text when it is valid
	// UTF-8 and otherwise base64 (RawEncoding says which).
	Raw         string `json:"raw"`
	RawEncoding string `json:"raw_encoding"`
	// RawSHA256 identifies the raw bytes; it also keys the event id.
	RawSHA256 string `json:"raw_sha256"`
	// RawTruncated says Raw holds only the first MaxRawBytes bytes.
	RawTruncated bool `json:"raw_truncated,omitempty"`
}

// MaxRawBytes bounds the raw bytes a letter carries, so that a letter
// always fits in a Kafka record. RawSHA256 is of the whole input.
const MaxRawBytes = 64 << 10

// New builds a Letter around raw.
func New(stage, origin, reason, field, detail string, raw []byte, receivedAt time.Time) Letter {
	l := Letter{
		Stage: stage, Origin: origin, Reason: reason, Field: field, Detail: detail,
		ReceivedAt: receivedAt.UTC(), RawSHA256: Hash(raw),
	}
	if len(raw) > MaxRawBytes {
		raw, l.RawTruncated = raw[:MaxRawBytes], true
	}
	if utf8.Valid(raw) {
		l.Raw, l.RawEncoding = string(raw), "utf-8"
	} else {
		l.Raw, l.RawEncoding = base64.StdEncoding.EncodeToString(raw), "base64"
	}
	return l
}

// InBatch records that the letter is item index of the message whose
// bytes hash to batchSHA256 (see Hash).
func (l Letter) InBatch(index int, batchSHA256 string) Letter {
	l.Index, l.BatchSHA256 = &index, batchSHA256
	return l
}

// Hash is the hex SHA-256 of raw, as the letters carry it.
func Hash(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Event encodes the letter. Its id is derived from the stage, origin,
// reason, raw bytes and place in a batch, not from the receive time, so
// the same bad input redelivered gives the same id. Its time is the
// receive time, as bad input has no event time to trust.
func (l Letter) Event(source string) (event.Envelope, error) {
	idx := ""
	if l.Index != nil {
		idx = strconv.Itoa(*l.Index)
	}
	return event.New(TypeRejected, source, l.Vehicle, l.ReceivedAt, l,
		l.Stage, l.Origin, l.Reason, l.RawSHA256, l.BatchSHA256, idx)
}
