// Package mqtt connects tms to an MQTT broker (G7's, or any): a subscriber
// that hands each message to a handler and acknowledges it only when the
// handler says so, and an embedded broker (mochi-mqtt) that `make run`
// uses when no broker is configured.
//
// The subscriber keeps a persistent session (clean session off, a fixed
// client id) at QoS 1 with paho's automatic acknowledgement turned off:
// a message the handler has not acknowledged is redelivered by the broker
// after a reconnect, so nothing acknowledged is ever lost and nothing
// unacknowledged is dropped.
//
// Both bound the packets they read (Config.MaxPacketBytes,
// EmbeddedConfig.MaxPacketBytes): the embedded broker closes the
// connection of a client that announces a larger packet, and the
// subscriber, whose MQTT client (paho) would read any packet whole,
// discards a larger message as it arrives and delivers it as Oversized.
package mqtt
