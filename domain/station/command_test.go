package station

import (
	"errors"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, b []byte) *Station {
	t.Helper()
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCommands(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(nil))
	var (
		never   = Current{}
		live3   = Current{Version: 3}
		deleted = Current{Version: 4, Deleted: true}
	)
	cases := []struct {
		name    string
		cmd     Command
		cur     Current
		err     error
		version int64
		created bool
	}{
		{"create new", CreateStation{Station: s}, never, nil, 1, true},
		{"create existing", CreateStation{Station: s}, live3, ErrExists, 0, false},
		{"create deleted continues the versions", CreateStation{Station: s}, deleted, nil, 5, true},

		{"put new", PutStation{Station: s}, never, nil, 1, true},
		{"put replaces", PutStation{Station: s}, live3, nil, 4, false},
		{"put re-creates a deleted one", PutStation{Station: s}, deleted, nil, 5, true},
		{"put if-match right", PutStation{Station: s, Condition: Condition{IfMatch: []int64{2, 3}}}, live3, nil, 4, false},
		{"put if-match stale", PutStation{Station: s, Condition: Condition{IfMatch: []int64{2}}}, live3, ErrPreconditionFailed, 0, false},
		{"put if-match nothing ours", PutStation{Station: s, Condition: Condition{IfMatch: []int64{}}}, live3, ErrPreconditionFailed, 0, false},
		{"put if-match on a new one", PutStation{Station: s, Condition: Condition{IfMatch: []int64{0}}}, never, ErrPreconditionFailed, 0, false},
		{"put if-match on a deleted one", PutStation{Station: s, Condition: Condition{IfMatch: []int64{4}}}, deleted, ErrPreconditionFailed, 0, false},
		{"put if-match * existing", PutStation{Station: s, Condition: Condition{IfMatchAny: true}}, live3, nil, 4, false},
		{"put if-match * new", PutStation{Station: s, Condition: Condition{IfMatchAny: true}}, never, ErrPreconditionFailed, 0, false},
		{"put if-none-match * new", PutStation{Station: s, Condition: Condition{IfNoneMatchAny: true}}, never, nil, 1, true},
		{"put if-none-match * deleted", PutStation{Station: s, Condition: Condition{IfNoneMatchAny: true}}, deleted, nil, 5, true},
		{"put if-none-match * existing", PutStation{Station: s, Condition: Condition{IfNoneMatchAny: true}}, live3, ErrPreconditionFailed, 0, false},

		{"delete existing", DeleteStation{ID: "S001"}, live3, nil, 4, false},
		{"delete if-match right", DeleteStation{ID: "S001", Condition: Condition{IfMatch: []int64{3}}}, live3, nil, 4, false},
		{"delete if-match stale", DeleteStation{ID: "S001", Condition: Condition{IfMatch: []int64{1}}}, live3, ErrPreconditionFailed, 0, false},
		{"delete absent", DeleteStation{ID: "S001"}, never, ErrNotFound, 0, false},
		{"delete absent with if-match: 404 first", DeleteStation{ID: "S001", Condition: Condition{IfMatch: []int64{3}}}, never, ErrNotFound, 0, false},
		{"delete deleted", DeleteStation{ID: "S001"}, deleted, ErrNotFound, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, err := c.cmd.Decide(c.cur)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if d.Version != c.version || d.Created != c.created {
				t.Errorf("version %d created %v, want %d %v", d.Version, d.Created, c.version, c.created)
			}
			ch, err := FromEvent(d.Event)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Version != d.Version || ch.ID != "S001" || d.Event.Subject != "S001" {
				t.Errorf("the event is of %s version %d (subject %s)", ch.ID, ch.Version, d.Event.Subject)
			}
		})
	}
}

// TestEventIDsAreDeterministicAndDistinct: the same change gives the same
// id; versions and kinds never share one.
func TestEventIDsAreDeterministicAndDistinct(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(nil))
	a, _ := s.Upserted("/a", 1, t0)
	b, _ := s.Upserted("/b", 1, t0.Add(time.Hour)) // another source and time: the same change
	c, _ := s.Upserted("/a", 2, t0)
	d, _ := DeletedEvent("/a", "S001", 2, t0)
	if a.ID != b.ID {
		t.Error("the same station version has two ids")
	}
	if a.ID == c.ID || c.ID == d.ID {
		t.Error("different changes share an id")
	}
	if !a.Time.Equal(t0) || a.Subject != "S001" || a.Type != event.TypeStationUpserted {
		t.Errorf("envelope %+v", a)
	}
}
