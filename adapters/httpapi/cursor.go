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
	key, ok := p.cursor()
	if !ok {
		return nil
	}
	at, id, found := strings.Cut(key, " ")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !found || err != nil || uuid.Validate(id) != nil {
		p.fail("cursor", "not a cursor this API returned; pass next_cursor back unchanged")
		return nil
	}
	return &visits.Cursor{EnteredAt: t, VisitID: id}
}

func visitCursor(v *visits.Visit) *string {
	return encodeCursor(v.EnteredAt.UTC().Format(time.RFC3339Nano) + " " + v.VisitID)
}

func timeCursor(t time.Time) *string {
	return encodeCursor(t.UTC().Format(time.RFC3339Nano))
}
