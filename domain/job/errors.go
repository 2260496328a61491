package job

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError says what is wrong with one field of a job request. Field is
// the field's JSON path (vehicle, stops[2].station_id, cargo.weight_kg).
type FieldError struct {
	Field  string
	Detail string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Detail }

// ValidationError lists every bad field of a job request, in document
// order, so that a client can fix its request in one round trip.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid job: " + strings.Join(parts, "; ")
}

// Sentinel errors of the commands.
var (
	// ErrNotFound: no such job.
	ErrNotFound = errors.New("job not found")
	// ErrFinished: the job has completed or been cancelled already.
	ErrFinished = errors.New("job already finished")
	// ErrConflict: the external reference belongs to another job.
	ErrConflict = errors.New("external reference already used")
)

type errs struct{ list []FieldError }

func (e *errs) add(field, format string, args ...any) {
	e.list = append(e.list, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return &ValidationError{Fields: e.list}
}
