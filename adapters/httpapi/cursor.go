package httpapi

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/visits"
)

// A cursor is the key the next page starts after, written out plainly,
// so that the OpenAPI document can say exactly which strings are cursors
// (and a fuzzer generating them from it finds no string the server
// refuses): the last plate of a vehicles page, the last id of a stations
// page, the last fix time of a track page (RFC 3339), and for visits in
// entry order, the last visit's entry time in Unix microseconds and its id
// (entryCursorPattern). Any string of that form is a valid place to start
// after, whether or not such an item exists. Clients should still pass
// next_cursor back unchanged: the form may change between versions.

// errCursor is the detail of a cursor that is not of its list's form.
const errCursor = "not a cursor of this list; pass next_cursor back unchanged"

func (p *params) cursor() (string, bool) {
	v, ok := p.single("cursor")
	if !ok {
		return "", false
	}
	if v == "" {
		p.fail("cursor", errCursor)
		return "", false
	}
	return v, true
}

// plateCursor reads a vehicles list cursor: a plate, normalised as the
// path's are.
func (p *params) plateCursor() string {
	key, ok := p.cursor()
	if !ok {
		return ""
	}
	pl, rej := position.NormalizePlate("cursor", key)
	if rej != nil {
		p.fail("cursor", errCursor)
		return ""
	}
	return pl
}

func plateCursor(plate string) *string { return &plate }

// timeCursor reads a track cursor: a fix time.
func (p *params) timeCursor() *time.Time {
	key, ok := p.cursor()
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, key)
	if err != nil {
		p.fail("cursor", errCursor)
		return nil
	}
	return &t
}

func timeCursor(t time.Time) *string {
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// stationCursor reads a stations list cursor: a station id.
func (p *params) stationCursor() string {
	key, ok := p.cursor()
	if !ok {
		return ""
	}
	if station.ValidateID("cursor", key) != nil {
		p.fail("cursor", errCursor)
		return ""
	}
	return key
}

func stationCursor(id string) *string { return &id }

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

// entryCursorPattern is the form of a cursor of visits in entry order:
// the entry time in Unix microseconds (Postgres keeps microseconds; 16
// digits reach past the year 2286) and the visit id, a lower-case UUID.
var entryCursorPattern = regexp.MustCompile(`^(-?[0-9]{1,16})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// entryCursor reads a cursor of visits in entry order, live or replayed.
func (p *params) entryCursor() (time.Time, string, bool) {
	key, ok := p.cursor()
	if !ok {
		return time.Time{}, "", false
	}
	m := entryCursorPattern.FindStringSubmatch(key)
	if m == nil {
		p.fail("cursor", errCursor)
		return time.Time{}, "", false
	}
	us, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil { // cannot happen: 16 digits fit
		p.fail("cursor", errCursor)
		return time.Time{}, "", false
	}
	return time.UnixMicro(us).UTC(), m[2], true
}

func entryCursor(enteredAt time.Time, visitID string) *string {
	s := strconv.FormatInt(enteredAt.UnixMicro(), 10) + "_" + strings.ToLower(visitID)
	return &s
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
