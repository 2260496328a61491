package g7event

import (
	"slices"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func stop(from, to int, lat float64) Stop {
	return Stop{Start: t0.Add(time.Duration(from) * time.Minute), End: t0.Add(time.Duration(to) * time.Minute),
		At: geo.Point{Lat: lat, Lng: 121.4}}
}

// metres north of 31.2.
func north(m float64) float64 { return 31.2 + m/111_195 }

func TestCompare(t *testing.T) {
	t.Parallel()
	rules := MatchRules{MaxDistanceM: DefaultMatchDistanceM, Slack: DefaultMatchSlack}
	g7 := []Stop{
		stop(0, 20, north(0)),    // 0: both saw it, G7 a minute later
		stop(30, 31, north(0)),   // 1: too short for tms
		stop(40, 60, north(500)), // 2: at tms's time, but 500 m away
		stop(100, 140, north(0)), // 3: one long stop tms cut in two
		stop(150, 151, north(0)), // 4: within the slack of tms's 5 only
	}
	tms := []Stop{
		stop(-1, 19, north(30)),  // 0
		stop(40, 60, north(0)),   // 1
		stop(100, 110, north(0)), // 2
		stop(112, 140, north(0)), // 3: overlaps G7's 3 most
		stop(153, 160, north(0)), // 4: 2 minutes after G7's 4 ended
		stop(200, 210, north(0)), // 5: only tms
	}
	c := Compare(g7, tms, rules)
	var pairs [][2]int
	for _, p := range c.Pairs {
		pairs = append(pairs, [2]int{p.G7, p.TMS})
	}
	if want := [][2]int{{0, 0}, {3, 3}, {4, 4}}; !slices.Equal(pairs, want) {
		t.Errorf("pairs %v, want %v", pairs, want)
	}
	if !slices.Equal(c.OnlyG7, []int{1, 2}) || !slices.Equal(c.OnlyTMS, []int{1, 2, 5}) {
		t.Errorf("only G7 %v, only tms %v", c.OnlyG7, c.OnlyTMS)
	}
	p := c.Pairs[0]
	if p.StartDiff != time.Minute || p.EndDiff == nil || *p.EndDiff != time.Minute || p.DistanceM < 29 || p.DistanceM > 31 ||
		p.Overlap != 19*time.Minute {
		t.Errorf("pair 0: %+v", p)
	}
	if c.Pairs[2].Overlap != 0 {
		t.Errorf("a pair met within the slack overlaps by %s", c.Pairs[2].Overlap)
	}
	// An open stop has no end difference.
	open := tms[0]
	open.Open = true
	if c := Compare(g7[:1], []Stop{open}, rules); len(c.Pairs) != 1 || c.Pairs[0].EndDiff != nil {
		t.Errorf("open: %+v", c.Pairs)
	}
	// The answer does not depend on the order of the inputs.
	rev := slices.Clone(tms)
	slices.Reverse(rev)
	c2 := Compare(g7, rev, rules)
	if len(c2.Pairs) != len(c.Pairs) {
		t.Fatalf("reversed: %+v", c2)
	}
	for i, p := range c2.Pairs {
		if p.G7 != c.Pairs[i].G7 || len(tms)-1-p.TMS != c.Pairs[i].TMS {
			t.Errorf("reversed pair %d: %+v, want %+v", i, p, c.Pairs[i])
		}
	}
	// No slack, no distance: only exact places that overlap.
	if c := Compare(g7, tms, MatchRules{}); len(c.Pairs) != 1 || c.Pairs[0].G7 != 3 || c.Pairs[0].TMS != 3 {
		t.Errorf("strict rules: %+v, want G7 3 with tms 3 alone (the others are metres or minutes apart)", c.Pairs)
	}
}

func TestMatchRulesBounds(t *testing.T) {
	t.Parallel()
	for _, r := range []MatchRules{{MaxDistanceM: -1}, {MaxDistanceM: MaxMatchDistanceM + 1}, {Slack: -time.Second}, {Slack: 2 * time.Hour}} {
		if r.Validate() == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	if err := (MatchRules{MaxDistanceM: 200, Slack: time.Minute}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestRank(t *testing.T) {
	t.Parallel()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ordered := []Rank{
		{ID: "b"},
		{PushTime: at(1), ID: "a"},
		{PushTime: at(2), ID: "a"},
		{PushTime: at(2), ID: "b"},
		{Closed: true, End: at(30), ID: "z"},         // closed, no push time
		{Closed: true, PushTime: at(3), End: at(20)}, // G7's later word
		{Closed: true, PushTime: at(3), End: at(25)}, // the same push, a later end
		{Closed: true, PushTime: at(3), End: at(25), ID: "c"},
	}
	for i := range ordered {
		for j := range ordered {
			if got := ordered[i].Less(ordered[j]); got != (i < j) {
				t.Errorf("rank %d < rank %d: %v", i, j, got)
			}
		}
	}
}
