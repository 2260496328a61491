package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The compatibility check. A schema on tms's topics may change only so
// that every event valid under the released schema stays valid under the
// current one: the topics keep their events forever, and a consumer that
// reads them from the beginning meets every version ever written. So a
// current schema may add optional properties, widen an enum, a range or a
// type, drop a requirement; it may not remove or rename a property, add a
// required one, narrow a type, an enum, a range or a format, or constrain
// what the released schema left open. A change that must break gets a new
// type (.v2), with a schema and a released copy of its own.
//
// No well-kept Go library compares JSON Schemas (the ones that exist are
// alpha-quality or tied to Kubernetes' structural schemas), so this
// compares the subset of JSON Schema 2020-12 that tms's schemas use, which
// is small and regular: type, const, enum, properties, required,
// additionalProperties, items, prefixItems, the numeric, length and size
// bounds, uniqueItems, pattern, format, $ref (within a file and across
// files), allOf, and (compared for equality only) oneOf, not and if with
// then/else. Any other keyword fails the check with a message saying that
// the check has to learn it first: it is never silently taken as
// compatible. The check is conservative: it may refuse a change that is
// in fact compatible (a pattern rewritten wider), never the other way.

// annotations are keywords that do not change what a schema accepts.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "$defs": true, "title": true, "description": true,
	"examples": true, "default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

// registry holds schema documents by their $id.
type registry map[string]any

// loadRegistry reads every .json file directly in dir of fsys.
func loadRegistry(fsys fs.FS, dir string) (registry, map[string]string, error) {
	r, files := registry{}, map[string]string{}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		raw, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, err
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		id, _ := doc["$id"].(string)
		if id == "" {
			return nil, nil, fmt.Errorf("%s: no $id", e.Name())
		}
		r[id], files[e.Name()] = doc, id
	}
	return r, files, nil
}

// resolve finds what ref, read in the document base, refers to.
func (r registry) resolve(base, ref string) (string, any, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u, err := b.Parse(ref)
	if err != nil {
		return "", nil, err
	}
	frag := u.Fragment
	u.Fragment = ""
	doc, ok := r[u.String()]
	if !ok {
		return "", nil, fmt.Errorf("$ref %q: no document %s", ref, u)
	}
	node := doc
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := node.(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("$ref %q: %q is not in an object", ref, tok)
		}
		if node, ok = m[tok]; !ok {
			return "", nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return u.String(), node, nil
}

// schemaKeywords hold a schema; schemaListKeywords a list of them;
// schemaMapKeywords a map of them.
var (
	schemaKeywords     = []string{"items", "additionalProperties", "not", "if", "then", "else"}
	schemaListKeywords = []string{"prefixItems", "allOf", "oneOf"}
	schemaMapKeywords  = []string{"properties"}
)

// expand returns node, read in document base, with every $ref replaced by
// what it refers to and the annotations dropped: a plain tree that can be
// compared keyword by keyword. A $ref beside other keywords becomes an
// allOf of the two.
func (r registry) expand(base string, node any, refs []string) (any, error) {
	m, ok := node.(map[string]any)
	if !ok {
		return node, nil // true, false
	}
	out := map[string]any{}
	for k, v := range m {
		if annotations[k] || k == "$ref" {
			continue
		}
		var err error
		switch {
		case slices.Contains(schemaKeywords, k):
			out[k], err = r.expand(base, v, refs)
		case slices.Contains(schemaListKeywords, k):
			list, _ := v.([]any)
			exp := make([]any, len(list))
			for i, s := range list {
				if exp[i], err = r.expand(base, s, refs); err != nil {
					break
				}
			}
			out[k] = exp
		case slices.Contains(schemaMapKeywords, k):
			props, _ := v.(map[string]any)
			exp := map[string]any{}
			for name, s := range props {
				if exp[name], err = r.expand(base, s, refs); err != nil {
					break
				}
			}
			out[k] = exp
		default:
			out[k] = v
		}
		if err != nil {
			return nil, err
		}
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return out, nil
	}
	target, node, err := r.resolve(base, ref)
	if err != nil {
		return nil, err
	}
	if slices.Contains(refs, target+"#"+ref) {
		return nil, fmt.Errorf("$ref %q is recursive, which the check does not follow", ref)
	}
	exp, err := r.expand(target, node, append(refs, target+"#"+ref))
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return exp, nil
	}
	return map[string]any{"allOf": []any{out, exp}}, nil
}

// knownKeywords are those compat understands (after expand).
var knownKeywords = map[string]bool{
	"type": true, "const": true, "enum": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "prefixItems": true, "minimum": true, "exclusiveMinimum": true, "maximum": true, "exclusiveMaximum": true,
	"minLength": true, "maxLength": true, "minItems": true, "maxItems": true, "minProperties": true, "maxProperties": true,
	"uniqueItems": true, "pattern": true, "format": true, "allOf": true, "oneOf": true, "not": true, "if": true, "then": true, "else": true,
}

var (
	lowerBounds = []string{"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"}
	upperBounds = []string{"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"}
	// equalOnly must be the same in both, or gone from the new schema:
	// any change to them could narrow.
	equalOnly = []string{"pattern", "format", "oneOf", "not"}
)

// compat reports what the new schema rejects that the old accepted (as far
// as the subset goes), at path.
func compat(old, new any, at string) []string {
	if old == false || new == true || isEmpty(new) {
		return nil
	}
	if new == false {
		return []string{at + ": accepts nothing now"}
	}
	o, _ := old.(map[string]any)
	n, _ := new.(map[string]any)
	if old == true || o == nil {
		o = map[string]any{}
	}
	var p []string
	for _, m := range []map[string]any{o, n} {
		for k := range m {
			if !knownKeywords[k] {
				p = append(p, fmt.Sprintf("%s: the compatibility check does not understand %q yet: teach it (schemas/compat_test.go) before using it", at, k))
			}
		}
	}
	if len(p) > 0 {
		return p
	}
	narrowed := func(k string) {
		was := "none"
		if v, ok := o[k]; ok {
			was = show(v)
		}
		p = append(p, fmt.Sprintf("%s: %s %s narrows the released one (%s)", at, k, show(n[k]), was))
	}
	// type
	if nt, ok := n["type"]; ok {
		ot, had := o["type"]
		if !had {
			narrowed("type")
		} else {
			for _, t := range asList(ot) {
				if !slices.Contains(asList(nt), t) && (t != "integer" || !slices.Contains(asList(nt), any("number"))) {
					p = append(p, fmt.Sprintf("%s: type %v no longer allows %v", at, nt, t))
				}
			}
		}
	}
	// const and enum: the values the new schema allows must include the old's.
	if nv, ok := values(n); ok {
		ov, had := values(o)
		switch {
		case !had:
			p = append(p, fmt.Sprintf("%s: now limited to %s", at, show(nv)))
		default:
			for _, v := range ov {
				if !slices.ContainsFunc(nv, func(w any) bool { return reflect.DeepEqual(v, w) }) {
					p = append(p, fmt.Sprintf("%s: %s no longer allowed", at, show(v)))
				}
			}
		}
	}
	// properties, additionalProperties, required
	op, _ := o["properties"].(map[string]any)
	np, _ := n["properties"].(map[string]any)
	oap, hadAP := o["additionalProperties"]
	for _, name := range sortedKeys(op) {
		ns, ok := np[name]
		if !ok {
			p = append(p, fmt.Sprintf("%s: property %q removed (or renamed)", at, name))
			continue
		}
		p = append(p, compat(op[name], ns, at+"."+name)...)
	}
	for _, name := range sortedKeys(np) {
		if _, ok := op[name]; ok {
			continue
		}
		switch {
		case hadAP && oap == false:
			// closed before: a new property only accepts more.
		case hadAP:
			p = append(p, compat(oap, np[name], at+"."+name)...)
		default:
			p = append(p, fmt.Sprintf("%s: new property %q constrains what the released schema left open", at, name))
		}
	}
	if nap, ok := n["additionalProperties"]; ok {
		switch {
		case hadAP:
			p = append(p, compat(oap, nap, at+".additionalProperties")...)
		case nap != true:
			narrowed("additionalProperties")
		}
	}
	oreq := asList(o["required"])
	for _, r := range asList(n["required"]) {
		if !slices.Contains(oreq, r) {
			p = append(p, fmt.Sprintf("%s: %v is required now", at, r))
		}
	}
	// items and prefixItems
	if ni, ok := n["items"]; ok {
		if oi, had := o["items"]; had {
			p = append(p, compat(oi, ni, at+"[]")...)
		} else if ni != true {
			narrowed("items")
		}
	}
	if npi, ok := n["prefixItems"].([]any); ok {
		opi, _ := o["prefixItems"].([]any)
		if len(opi) != len(npi) {
			narrowed("prefixItems")
		} else {
			for i := range npi {
				p = append(p, compat(opi[i], npi[i], fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	// bounds
	for _, k := range lowerBounds {
		if nb, ok := n[k].(float64); ok {
			if ob, had := o[k].(float64); !had || nb > ob {
				narrowed(k)
			}
		}
	}
	for _, k := range upperBounds {
		if nb, ok := n[k].(float64); ok {
			if ob, had := o[k].(float64); !had || nb < ob {
				narrowed(k)
			}
		}
	}
	if n["uniqueItems"] == true && o["uniqueItems"] != true {
		narrowed("uniqueItems")
	}
	for _, k := range equalOnly {
		if nv, ok := n[k]; ok && !reflect.DeepEqual(o[k], nv) {
			narrowed(k)
		}
	}
	// allOf: each part may only widen; none may be added.
	if na, ok := n["allOf"].([]any); ok {
		oa, _ := o["allOf"].([]any)
		if len(oa) != len(na) {
			narrowed("allOf")
		} else {
			for i := range na {
				p = append(p, compat(oa[i], na[i], fmt.Sprintf("%s.allOf[%d]", at, i))...)
			}
		}
	}
	// if, then, else: the same condition, and each branch only widened.
	if _, ok := n["if"]; ok || o["if"] != nil {
		if !reflect.DeepEqual(o["if"], n["if"]) {
			if _, ok := n["if"]; ok {
				narrowed("if")
			} else if n["then"] != nil || n["else"] != nil {
				narrowed("then")
			}
		} else {
			for _, k := range []string{"then", "else"} {
				if nb, ok := n[k]; ok {
					ob, had := o[k]
					if !had {
						ob = true
					}
					p = append(p, compat(ob, nb, at+"."+k)...)
				}
			}
		}
	}
	return p
}

func isEmpty(s any) bool { m, ok := s.(map[string]any); return ok && len(m) == 0 }

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// values returns the values const or enum allow, if either is there.
func values(m map[string]any) ([]any, bool) {
	if c, ok := m["const"]; ok {
		return []any{c}, true
	}
	if e, ok := m["enum"].([]any); ok {
		return e, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// compatible compares the schema file name in two registries.
func compatible(released, current registry, id string) ([]string, error) {
	old, err := released.expand(id, released[id], nil)
	if err != nil {
		return nil, fmt.Errorf("released: %w", err)
	}
	cur, ok := current[id]
	if !ok {
		return []string{"the current schema is gone"}, nil
	}
	new, err := current.expand(id, cur, nil)
	if err != nil {
		return nil, fmt.Errorf("current: %w", err)
	}
	return compat(old, new, "$"), nil
}

// TestSchemasChangeOnlyCompatibly checks every current schema against its
// released copy in schemas/released/: a frozen copy of each schema as it
// was first committed to main, which never changes afterwards. (A copy in
// the tree rather than `git show` of the commit that added it: the check
// then needs no history, which CI's shallow clones and source tarballs do
// not have, and a change to a released schema shows in review as a change
// to a file under released/, which no one makes by accident.)
func TestSchemasChangeOnlyCompatibly(t *testing.T) {
	t.Parallel()
	released, releasedFiles, err := loadRegistry(Released, "released")
	if err != nil {
		t.Fatal(err)
	}
	current, currentFiles, err := loadRegistry(FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for name := range currentFiles {
		if _, ok := releasedFiles[name]; !ok {
			t.Errorf("%s has no released copy: copy it to schemas/released/ in the commit that adds it; from then on it may change only compatibly", name)
		}
	}
	checked := 0
	for name, id := range releasedFiles {
		if currentFiles[name] != id {
			t.Errorf("released %s (%s) has no current schema: a released type's schema stays while its events are on a topic", name, id)
			continue
		}
		if !strings.HasPrefix(name, "tms.") {
			continue // shared parts: checked through the types that use them
		}
		problems, err := compatible(released, current, id)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, p := range problems {
			t.Errorf("%s: %s: a breaking change needs a new version of the type (.v2)", name, p)
		}
		checked++
	}
	if checked < 16 {
		t.Errorf("only %d event types checked", checked)
	}
}

// TestTheCompatibilityCheckCatchesBreakingChanges guards the check: each
// breaking change to a released schema (or to a part it refers to) must
// be reported, and each compatible one must not.
func TestTheCompatibilityCheckCatchesBreakingChanges(t *testing.T) {
	t.Parallel()
	released, _, err := loadRegistry(Released, "released")
	if err != nil {
		t.Fatal(err)
	}
	const (
		base      = "https://tms.example/schemas/"
		completed = base + "tms.job.completed.v1.json"
		jobDefs   = base + "job.json"
		envelope  = base + "cloudevent.json"
	)
	// node walks a document by keys.
	node := func(r registry, id string, keys ...string) map[string]any {
		m := r[id].(map[string]any)
		for _, k := range keys {
			m = m[k].(map[string]any)
		}
		return m
	}
	defs := func(r registry, keys ...string) map[string]any {
		return node(r, jobDefs, append([]string{"$defs"}, keys...)...)
	}
	completion := func(r registry) map[string]any { return defs(r, "completion", "properties") }
	cases := []struct {
		name     string
		breaking bool
		change   func(r registry)
	}{
		{"a property removed", true, func(r registry) { delete(completion(r), "noise") }},
		{"a property renamed", true, func(r registry) {
			c := completion(r)
			c["order_ref"] = c["external_ref"]
			delete(c, "external_ref")
		}},
		{"a new required property", true, func(r registry) {
			completion(r)["price"] = map[string]any{"type": "number"}
			c := defs(r, "completion")
			c["required"] = append(c["required"].([]any), "price")
		}},
		{"an optional property now required", true, func(r registry) {
			c := defs(r, "completion")
			c["required"] = append(c["required"].([]any), "external_ref")
		}},
		{"an enum narrowed", true, func(r registry) { defs(r)["stop_status"] = map[string]any{"enum": []any{"pending", "departed"}} }},
		{"a const changed", true, func(r registry) {
			node(r, completed, "properties", "data", "properties")["revision"] = map[string]any{"const": 2}
		}},
		{"a type narrowed", true, func(r registry) { defs(r, "metres")["type"] = "integer" }},
		{"a format added", true, func(r registry) { defs(r, "station_name")["format"] = "email" }},
		{"a pattern changed", true, func(r registry) { defs(r, "station_id")["pattern"] = "^[A-Z0-9]{1,64}$" }},
		{"a minimum raised", true, func(r registry) { defs(r, "cargo", "properties", "weight_kg")["exclusiveMinimum"] = 100.0 }},
		{"a maximum lowered", true, func(r registry) { defs(r, "cargo", "properties", "weight_kg")["maximum"] = 40000.0 }},
		{"a maxItems lowered", true, func(r registry) { completion(r)["stops"].(map[string]any)["maxItems"] = 20.0 }},
		{"a new bound", true, func(r registry) { defs(r, "external_ref")["minLength"] = 3.0 }},
		{"uniqueItems added", true, func(r registry) { completion(r)["legs"].(map[string]any)["uniqueItems"] = true }},
		{"an open envelope closed", true, func(r registry) { r[envelope].(map[string]any)["additionalProperties"] = false }},
		{"an open envelope given a new constrained property", true, func(r registry) {
			node(r, envelope, "properties")["traceparent"] = map[string]any{"type": "string"}
		}},
		{"a condition changed", true, func(r registry) {
			defs(r, "stop")["allOf"].([]any)[0].(map[string]any)["if"] = map[string]any{"properties": map[string]any{"status": map[string]any{"const": "arrived"}}}
		}},
		{"a conjunct added", true, func(r registry) {
			d := node(r, completed, "properties", "data")
			d["allOf"] = append(d["allOf"].([]any), map[string]any{"required": []any{"external_ref"}})
		}},
		{"a keyword the check does not know", true, func(r registry) { defs(r, "completion")["dependentRequired"] = map[string]any{} }},
		{"a reference to a missing part", true, func(r registry) { completion(r)["cargo"] = map[string]any{"$ref": "#/$defs/freight"} }},

		{"a new optional property", false, func(r registry) {
			completion(r)["co2_kg"] = map[string]any{"type": "number", "minimum": 0.0}
		}},
		{"an enum widened", false, func(r registry) {
			f := defs(r, "stop_flags", "items")
			f["enum"] = append(f["enum"].([]any), "manual")
		}},
		{"a maximum raised", false, func(r registry) { defs(r, "cargo", "properties", "weight_kg")["maximum"] = 400000.0 }},
		{"a requirement dropped", false, func(r registry) {
			c := defs(r, "completion")
			c["required"] = slices.DeleteFunc(slices.Clone(c["required"].([]any)), func(v any) bool { return v == "legs" })
		}},
		{"a type widened", false, func(r registry) { defs(r, "index")["type"] = "number" }},
		{"a format dropped", false, func(r registry) { delete(defs(r, "job_id"), "format") }},
		{"a description rewritten", false, func(r registry) { defs(r, "completion")["description"] = "What billing charges from." }},
		{"a reference inlined", false, func(r registry) {
			completion(r)["vehicle"] = map[string]any{"type": "string", "minLength": 1.0, "maxLength": 64.0}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			current := registry{}
			for id, doc := range released {
				current[id] = deepCopy(t, doc)
			}
			c.change(current)
			problems, err := compatible(released, current, completed)
			if err != nil {
				problems = append(problems, err.Error())
			}
			switch {
			case c.breaking && len(problems) == 0:
				t.Error("not reported")
			case !c.breaking && len(problems) > 0:
				t.Errorf("reported: %v", problems)
			}
		})
	}
}

func deepCopy(t *testing.T, v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
