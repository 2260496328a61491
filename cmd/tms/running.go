package main

// Finding a running `tms serve` (make run): part 4 of issue 9, "every tms
// command works against a running make run with no extra settings".

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// runningFile, under TMS_DATA_DIR, is where `tms serve` says which
// embedded services it runs, for the other commands run against the same
// data dir: the embedded Kafka broker lives inside the serving process,
// and a second one cannot open the same log or listen on the same port.
// It holds the local database's password: 0600.
const runningFile = "serve.json"

// running is what runningFile holds. Only the services `tms serve` runs
// itself are named; what is configured (KAFKA_BROKERS, DATABASE_URL,
// MQTT_URL) every command reads from the same settings.
type running struct {
	PID          int       `json:"pid"`
	KafkaBrokers []string  `json:"kafka_brokers,omitempty"`
	DatabaseURL  string    `json:"database_url,omitempty"`
	MQTTURL      string    `json:"mqtt_url,omitempty"`
	Since        time.Time `json:"since"`
}

// writeRunning records what this `tms serve` runs embedded, and returns
// the function that removes the record (when it is still this process's).
func writeRunning(dataDir string, r running) (remove func(), err error) {
	path := filepath.Join(dataDir, runningFile)
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dataDir, runningFile+".*")
	if err != nil {
		return nil, fmt.Errorf("record the embedded services: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(raw, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path) // CreateTemp made it 0600
	}
	if err != nil {
		return nil, fmt.Errorf("record the embedded services: %w", err)
	}
	return func() {
		if now, ok := readRunningFile(path); ok && now.PID == r.PID {
			_ = os.Remove(path)
		}
	}, nil
}

// findRunning returns what a live `tms serve` using dataDir runs
// embedded; ok is false when none does (no record, or one left by a
// process that is gone or whose Kafka broker does not answer).
func findRunning(dataDir string) (r running, ok bool) {
	r, ok = readRunningFile(filepath.Join(dataDir, runningFile))
	if !ok || r.PID <= 0 || r.PID == os.Getpid() {
		return running{}, false
	}
	if err := syscall.Kill(r.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return running{}, false // the process is gone
	}
	for _, addr := range r.KafkaBrokers {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return running{}, false
		}
		_ = c.Close()
	}
	return r, true
}

func readRunningFile(path string) (running, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return running{}, false
	}
	var r running
	if json.Unmarshal(raw, &r) != nil {
		return running{}, false
	}
	return r, true
}

// busyHint explains an embedded service that could not listen on its
// address because something else does: what that may be, and what to set.
func busyHint(err error, dataDir, setting, address, brokerSetting string) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	return fmt.Errorf("%w\n  Something else listens on %s (%s). If it is a running `tms serve` (make run), this command "+
		"finds it by its data dir, and %s has no record of one: run this command with the TMS_DATA_DIR that tms serve uses, "+
		"or set %s to the address of the service it runs", err, address, setting, filepath.Join(dataDir, runningFile), brokerSetting)
}
