package mqtt

import "strings"

// Match reports whether a message published to topic is under filter, as
// a broker matches them (MQTT 3.1.1, 4.7): '+' takes one level, a final
// '#' the parent level and every level below it, and a filter's leading
// "$share/<group>/" (a shared subscription) is not part of what it
// matches. Topics starting with '$' match no filter starting with a
// wildcard.
func Match(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, ok := strings.Cut(rest, "/")
		if !ok {
			return false
		}
		filter = f
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return i == len(fl)-1
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}
