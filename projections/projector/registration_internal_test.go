package projector

import (
	"testing"

	"github.com/tmsfleet/tms/domain/event"
)

// TestMembersFollowPartitions checks TMS_PROJECTOR_MEMBERS' rule: a
// projection runs the configured members when one of its topics is
// partitioned, one when all its topics have a single partition.
func TestMembersFollowPartitions(t *testing.T) {
	t.Parallel()
	d := Deps{Members: 3}
	for _, c := range []struct {
		topics []string
		want   int
	}{
		{[]string{event.TopicPositions}, 3},
		{[]string{event.TopicGeofence}, 3},
		{[]string{event.TopicJobs}, 3},
		{[]string{event.TopicStations}, 1},
		{[]string{event.TopicStations, event.TopicJobs}, 3},
	} {
		if got := d.members(c.topics); got != c.want {
			t.Errorf("members for %v = %d, want %d", c.topics, got, c.want)
		}
	}
}
