// Package g7 reads the position feed of the telematics provider G7: MQTT
// messages that carry a batch of fixes, {"data": [{...}, ...]}, where each
// item has plateNum, lat, lng and speed (numbers or numeric strings) and,
// when the device sends them, a fix time (time or gps_time, epoch
// milliseconds) and a heading (course, degrees).
//
// Parsing is item by item: a bad item is rejected with a reason and its raw
// bytes, and never stops the rest of its batch (the original system lost
// the remainder of a batch at the first bad record). Parked vehicles
// (speed 0) are positions like any other.
//
// A message is the publisher's to choose, so parsing is bounded: a
// message larger than Config.MaxPayloadBytes is refused unread, the
// batch is read as a stream of tokens rather than decoded whole, items
// past Config.MaxItems are only counted, and no rejection quotes more
// than a few dozen bytes of a value.
//
// EventParser reads G7's three event feeds (stop, idle, EMS): one event
// per message, {"pushTime", "data": {"plateNum", "startTime", "endTime",
// "seconds", "startLng", "startLat", "endLng"/"endlng", "endLat"/"endlat"}},
// numbers or numeric strings, endTime null while the event lasts. It is
// bounded too (EventConfig.MaxPayloadBytes, MaxDuration), and rejects an
// end before the start or implausible times and places with a reason
// (domain/g7event).
package g7
