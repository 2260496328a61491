package mqtt

import "testing"

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"g7/stop", "g7/stop", true},
		{"g7/stop", "g7/stops", false},
		{"g7/stop", "g7/stop/x", false},
		{"g7/+", "g7/stop", true},
		{"g7/+", "g7", false},
		{"g7/+/events", "g7/a/events", true},
		{"g7/#", "g7", true},
		{"g7/#", "g7/stop/a/b", true},
		{"#", "anything/at/all", true},
		{"#", "$SYS/broker", false},
		{"+/x", "$SYS/x", false},
		{"$share/tms/g7/stop", "g7/stop", true},
		{"$share/tms/g7/+", "g7/idle", true},
		{"$share/tms/g7/stop", "g7/idle", false},
		{"$share/tms", "tms", false},
		{"", "", true},
		{"a//b", "a//b", true},
	} {
		if got := Match(c.filter, c.topic); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}
