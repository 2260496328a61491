// Package event defines the CloudEvents 1.0 envelope every record on tms's
// topics carries, the versioned event type names, the names of the topics
// they are published on, and the deterministic event ids that let
// consumers deduplicate.
//
// Every record value is one event in structured JSON mode. The envelope's
// time is when the thing happened (for a position, the GPS fix time), never
// the processing time. The same input always gives the same id.
package event

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents specification version of every envelope.
const SpecVersion = "1.0"

// ContentType is the datacontenttype of every event's data.
const ContentType = "application/json"

// StructuredContentType is the content type of a whole structured-mode
// event, as carried in a record's content-type header.
const StructuredContentType = "application/cloudevents+json"

// Event type names. A change that would break a consumer gets a new version
// suffix, and both versions are produced until the old one is retired.
const (
	TypePositionReported = "tms.position.reported.v1"
	TypeStationUpserted  = "tms.station.upserted.v1"
	TypeStationDeleted   = "tms.station.deleted.v1"
	TypeEnteredStation   = "tms.vehicle.entered_station.v1"
	TypeExitedStation    = "tms.vehicle.exited_station.v1"
	TypeAlertRaised      = "tms.alert.raised.v1"
	TypeJobCreated       = "tms.job.created.v1"
	TypeJobStopArrived   = "tms.job.stop_arrived.v1"
	TypeJobStopDeparted  = "tms.job.stop_departed.v1"
	TypeJobCompleted     = "tms.job.completed.v1"
	TypeJobCancelled     = "tms.job.cancelled.v1"
	TypeJobStarted       = "tms.job.started.v1"
	TypeJobAmended       = "tms.job.amended.v1"
	// TypeG7EventReported is one report of a G7 stop, idle or EMS event
	// (domain/g7event), its kind in its data.
	TypeG7EventReported = "tms.g7.event.reported.v1"
)

// CommandTypePrefix starts the type of every command record: what an API
// appends for a processor to decide (tms.command.create_job.v1), not a
// fact. Commands share a topic with the events they lead to, and event
// consumers skip them.
const CommandTypePrefix = "tms.command."

// IsCommand reports whether typ is a command's type.
func IsCommand(typ string) bool { return strings.HasPrefix(typ, CommandTypePrefix) }

// Envelope is a CloudEvents 1.0 event in structured JSON mode.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// namespace scopes tms's name-based (version 5) UUIDs so that they never
// collide with ids minted by other systems from the same strings.
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://tms.example/events"))

// ID returns the deterministic id of the event of type typ identified by
// parts (for a position: the plate and the fix time). Equal inputs give
// equal ids, which is what lets consumers deduplicate redelivered events.
func ID(typ string, parts ...string) string {
	var buf [36]byte
	return string(AppendID(buf[:0], typ, parts...))
}

// UUID is ID(typ, parts...) as its 16 bytes, for what keeps many ids.
func UUID(typ string, parts ...string) uuid.UUID {
	// A version 5 UUID (RFC 9562): SHA-1 of the namespace and the name,
	// as uuid.NewSHA1 makes it, without allocating for names up to 256
	// bytes.
	var scratch [256]byte
	name := append(scratch[:0], namespace[:]...)
	name = append(name, typ...)
	name = append(name, 0)
	for i, p := range parts {
		if i > 0 {
			name = append(name, 0)
		}
		name = append(name, p...)
	}
	sum := sha1.Sum(name)
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// AppendID appends ID(typ, parts...) to dst: the same id, made without
// allocating (for names up to 256 bytes), for encoders that write an
// event's bytes directly.
func AppendID(dst []byte, typ string, parts ...string) []byte {
	u := UUID(typ, parts...)
	var text [36]byte
	hex.Encode(text[0:8], u[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], u[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], u[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], u[8:10])
	text[23] = '-'
	hex.Encode(text[24:36], u[10:16])
	return append(dst, text[:]...)
}

// New builds an envelope around data, with the id derived from typ and
// idParts. at is when the thing happened.
func New(typ, source, subject string, at time.Time, data any, idParts ...string) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s data: %w", typ, err)
	}
	return Envelope{
		SpecVersion:     SpecVersion,
		ID:              ID(typ, idParts...),
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            at.UTC(),
		DataContentType: ContentType,
		Data:            raw,
	}, nil
}

// ErrMalformed is returned by Decode for a value that is not a CloudEvents
// 1.0 envelope tms can read.
var ErrMalformed = errors.New("malformed event envelope")

// Decode parses a structured-mode CloudEvent and checks the attributes tms
// relies on.
func Decode(value []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(value, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case e.SpecVersion != SpecVersion:
		return Envelope{}, fmt.Errorf("%w: specversion %q", ErrMalformed, e.SpecVersion)
	case e.ID == "" || e.Type == "" || e.Source == "":
		return Envelope{}, fmt.Errorf("%w: id, type and source are required", ErrMalformed)
	}
	return e, nil
}
