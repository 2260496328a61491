package station

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError says what is wrong with one field of a station resource. Field
// is the field's JSON path (name, radius_m, detection.exit_margin_m,
// geometry.coordinates[0][3]); "body" is the request body as a whole.
type FieldError struct {
	Field  string
	Detail string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Detail }

// ValidationError lists every bad field of a station resource, in document
// order, so that a client can fix its request in one round trip.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid station: " + strings.Join(parts, "; ")
}

// Sentinel errors of the commands. Each is wrapped with the station and
// versions at stake, so its text explains itself.
var (
	// ErrNotFound: the station does not exist (never did, or is deleted).
	ErrNotFound = errors.New("station not found")
	// ErrExists: a create named a station that exists.
	ErrExists = errors.New("station already exists")
	// ErrPreconditionFailed: the client's If-Match or If-None-Match does
	// not hold for the station's current version.
	ErrPreconditionFailed = errors.New("precondition failed")
)

// errs collects field errors.
type errs struct {
	list []FieldError
}

func (e *errs) add(field, format string, args ...any) {
	e.list = append(e.list, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return &ValidationError{Fields: e.list}
}
