package httpapi

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/visits"
)

// Cursors are opaque to clients: base64url (unpadded) of the key the next
// page starts after. Clients must pass them back unchanged; their content
// may change between versions.

func encodeCursor(key string) *string {
	s := base64.RawURLEncoding.EncodeToString([]byte(key))
	return &s
}

func (p *params) cursor() (string, bool) {
	v, ok := p.single("cursor")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(b) == 0 {
		p.fail("cursor", "not a cursor this API returned; pass next_cursor back unchanged")
		return "", false
	}
	return string(b), true
}

// plateCursor reads a vehicles list cursor: the last plate of the page.
func (p *params) plateCursor() string {
	key, ok := p.cursor()
	if !ok {
		return ""
	}
	if pl, rej := position.NormalizePlate("cursor", key); rej != nil || pl != key {
		p.fail("cursor", "not a cursor this API returned; pass next_cursor back unchanged")
		return ""
	}
	return key
}

// timeCursor reads a track cursor: the last fix time of the page.
func (p *params) timeCursor() *time.Time {
	key, ok := p.cursor()
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, key)
	if err != nil {
		p.fail("cursor", "not a cursor this API returned; pass next_cursor back unchanged")
		return nil
	}
	return &t
}

// stationCursor reads a stations list cursor: the last id of the page.
func (p *params) stationCursor() string {
	key, ok := p.cursor()
	if !ok {
		return ""
	}
	if station.ValidateID("cursor", key) != nil {
		p.fail("cursor", "not a cursor this API returned; pass next_cursor back unchanged")
		return ""
	}
	return key
}

// visitCursor reads a visits cursor: the entry time and id of the last
// visit of the page.
func (p *params) visitCursor() *visits.Cursor {
	t, id, ok := p.entryCursor()
	if !ok {
		return nil
	}
	return &visits.Cursor{EnteredAt: t, VisitID: id}
}

func visitCursor(v *visits.Visit) *string { return entryCursor(v.EnteredAt, v.VisitID) }

// entryCursor reads a cursor of visits in entry order, live or replayed:
// the entry time and visit id of the last visit of the page.
func (p *params) entryCursor() (time.Time, string, bool) {
	key, ok := p.cursor()
	if !ok {
		return time.Time{}, "", false
	}
	at, id, found := strings.Cut(key, " ")
	t, err := time.Parse(time.RFC3339Nano, at)
	u, uerr := uuid.Parse(id)
	if !found || err != nil || uerr != nil {
		p.fail("cursor", "not a cursor this API returned; pass next_cursor back unchanged")
		return time.Time{}, "", false
	}
	// Canonical, as the cursors made here are: uuid.Parse also takes
	// forms (urn:uuid:...) that Postgres does not.
	return t, u.String(), true
}

func entryCursor(enteredAt time.Time, visitID string) *string {
	return encodeCursor(enteredAt.UTC().Format(time.RFC3339Nano) + " " + visitID)
}

func timeCursor(t time.Time) *string {
	return encodeCursor(t.UTC().Format(time.RFC3339Nano))
}

// page cuts a list read with one item more than limit (the query asks for
// limit+1: the extra item tells whether another page follows) to its
// page, and encodes each item for the response. next is the cursor of the
// following page, nil on the last one.
func page[T, J any](list []T, limit int, cursor func(*T) *string, encode func(*T) J) (items []J, next *string) {
	if len(list) > limit {
		list = list[:limit]
		next = cursor(&list[limit-1])
	}
	items = make([]J, 0, len(list))
	for i := range list {
		items = append(items, encode(&list[i]))
	}
	return items, next
}
