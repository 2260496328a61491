package station

import (
	"math"
	"time"

	"github.com/tmsfleet/tms/domain/geofence"
)

// Limits of a station's detection settings.
const (
	MaxConfirmFixes = 100
	MaxConfirmS     = 86400
	MaxExitMarginM  = 5000
)

// Detection is a station's own detection settings, as its definition gives
// them: a nil field takes the geofence's configured default. Seconds may be
// fractional.
type Detection struct {
	EnterConfirmFixes *int     `json:"enter_confirm_fixes,omitempty"`
	EnterConfirmS     *float64 `json:"enter_confirm_s,omitempty"`
	ExitMarginM       *float64 `json:"exit_margin_m,omitempty"`
	ExitConfirmFixes  *int     `json:"exit_confirm_fixes,omitempty"`
	ExitConfirmS      *float64 `json:"exit_confirm_s,omitempty"`
}

// Overrides returns d as the geofence's detection overrides.
func (d Detection) Overrides() geofence.DetectionOverrides {
	dur := func(s *float64) *time.Duration {
		if s == nil {
			return nil
		}
		v := time.Duration(math.Round(*s * float64(time.Second)))
		return &v
	}
	return geofence.DetectionOverrides{
		EnterConfirmFixes: d.EnterConfirmFixes,
		EnterConfirm:      dur(d.EnterConfirmS),
		ExitMarginM:       d.ExitMarginM,
		ExitConfirmFixes:  d.ExitConfirmFixes,
		ExitConfirm:       dur(d.ExitConfirmS),
	}
}

// parseDetection reads the detection object, reporting to e.
func parseDetection(e *errs, raw []byte) Detection {
	var d Detection
	members, dups, err := objectMembers(raw)
	if err != nil {
		e.add("detection", "%v", err)
		return d
	}
	addDups(e, "detection", dups)
	for _, m := range members {
		f := memberPath("detection", m.name)
		if isNull(m.value) {
			continue // the default, as if absent
		}
		switch m.name {
		case "enter_confirm_fixes":
			d.EnterConfirmFixes = confirmFixes(e, f, m.value)
		case "exit_confirm_fixes":
			d.ExitConfirmFixes = confirmFixes(e, f, m.value)
		case "enter_confirm_s":
			d.EnterConfirmS = bounded(e, f, m.value, 0, MaxConfirmS, "seconds")
		case "exit_confirm_s":
			d.ExitConfirmS = bounded(e, f, m.value, 0, MaxConfirmS, "seconds")
		case "exit_margin_m":
			d.ExitMarginM = bounded(e, f, m.value, 0, MaxExitMarginM, "metres")
		default:
			e.add(f, "unknown field; detection has enter_confirm_fixes, enter_confirm_s, exit_margin_m, exit_confirm_fixes and exit_confirm_s")
		}
	}
	return d
}

func confirmFixes(e *errs, field string, raw []byte) *int {
	n, err := jsonInt(raw)
	switch {
	case err != nil:
		e.add(field, "%v", err)
	case n < 1 || n > MaxConfirmFixes:
		e.add(field, "%d is outside [1, %d] fixes", n, MaxConfirmFixes)
	default:
		v := int(n)
		return &v
	}
	return nil
}

func bounded(e *errs, field string, raw []byte, lo, hi float64, unit string) *float64 {
	f, err := jsonNumber(raw)
	switch {
	case err != nil:
		e.add(field, "%v", err)
	case f < lo || f > hi:
		e.add(field, "%v is outside [%v, %v] %s", f, lo, hi, unit)
	default:
		return &f
	}
	return nil
}

// check validates d as read from an event.
func (d Detection) check(e *errs) {
	fixes := func(f string, n *int) {
		if n != nil && (*n < 1 || *n > MaxConfirmFixes) {
			e.add(f, "%d is outside [1, %d] fixes", *n, MaxConfirmFixes)
		}
	}
	num := func(f string, v *float64, hi float64) {
		if v != nil && (math.IsNaN(*v) || *v < 0 || *v > hi) {
			e.add(f, "%v is outside [0, %v]", *v, hi)
		}
	}
	fixes("detection.enter_confirm_fixes", d.EnterConfirmFixes)
	fixes("detection.exit_confirm_fixes", d.ExitConfirmFixes)
	num("detection.enter_confirm_s", d.EnterConfirmS, MaxConfirmS)
	num("detection.exit_confirm_s", d.ExitConfirmS, MaxConfirmS)
	num("detection.exit_margin_m", d.ExitMarginM, MaxExitMarginM)
}
