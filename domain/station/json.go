package station

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name  string
	value json.RawMessage
}

// objectMembers reads raw, which must be exactly one JSON object, into
// its members. A name given more than once is kept once, first value
// first, and listed in dups: encoding/json would silently keep the last,
// which hides a client's mistake.
func objectMembers(raw []byte) (members []member, dups []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, syntaxDetail(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if err := json.Unmarshal(raw, new(any)); err != nil {
			return nil, nil, syntaxDetail(err)
		}
		return nil, nil, fmt.Errorf("must be a JSON object, not %s", kindOf(raw))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, syntaxDetail(err)
		}
		name, _ := tok.(string) // inside an object, the decoder yields names as strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, syntaxDetail(err)
		}
		if seen[name] {
			if !slices.Contains(dups, name) {
				dups = append(dups, name)
			}
			continue
		}
		seen[name] = true
		members = append(members, member{name: name, value: v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, syntaxDetail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("malformed JSON: unexpected data after the object")
	}
	return members, dups, nil
}

// addDups reports the names given twice in the object at path.
func addDups(e *errs, path string, dups []string) {
	for _, d := range dups {
		e.add(memberPath(path, d), "given more than once")
	}
}

// memberPath is the path of member name of the object at path (""
// for the top level): path.name, or path["name"] for a name that is not
// a plain identifier, so that every path is unambiguous and non-empty.
func memberPath(path, name string) string {
	if name != "" && !strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

// syntaxDetail turns a decoder error into a detail for a client.
func syntaxDetail(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("malformed JSON: unexpected end of input")
	}
	return fmt.Errorf("malformed JSON: %v", err)
}

// kindOf names the JSON type of a (well-formed) value, for details.
func kindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// jsonString reads a JSON string.
func jsonString(raw []byte) (string, error) {
	var s string
	if kindOf(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("must be a string, not %s", kindOf(raw))
	}
	return s, nil
}

// jsonNumber reads a JSON number as a finite float64.
func jsonNumber(raw []byte) (float64, error) {
	if kindOf(raw) != "a number" {
		return 0, fmt.Errorf("must be a number, not %s", kindOf(raw))
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%s is not a representable number", bytes.TrimSpace(raw))
	}
	return f, nil
}

// jsonInt reads a JSON number that is a whole number (1 and 1.0 alike, as
// JSON Schema's integer does) within ±2^53, where float64 is exact.
func jsonInt(raw []byte) (int64, error) {
	f, err := jsonNumber(raw)
	if err != nil {
		return 0, fmt.Errorf("must be an integer, not %s", kindOf(raw))
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s is not an integer", bytes.TrimSpace(raw))
	}
	return int64(f), nil
}

// jsonArray reads a JSON array into its elements.
func jsonArray(raw []byte) ([]json.RawMessage, error) {
	if kindOf(raw) != "an array" {
		return nil, fmt.Errorf("must be an array, not %s", kindOf(raw))
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, syntaxDetail(err)
	}
	return a, nil
}
