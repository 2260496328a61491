package httpapi

import (
	"bytes"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// specParam turns OpenAPI's {plate} into gin's :plate.
var specParam = regexp.MustCompile(`\{([^}]+)\}`)

// engineOperations lists the engine's routes as "METHOD /gin/path".
func engineOperations(t *testing.T) []string {
	t.Helper()
	var ops []string
	for _, r := range newAPI(t, noStore()).srv.engine().Routes() {
		ops = append(ops, r.Method+" "+r.Path)
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPIValid loads openapi.json with kin-openapi, validates it
// against the OpenAPI 3 rules (references resolve, schemas and examples
// are well formed, path parameters are declared) and checks its paths
// and the engine's routes against each other.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPISpec)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(t.Context(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI: %v", err)
	}

	var spec []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			spec = append(spec, method+" "+specParam.ReplaceAllString(path, ":$1"))
			if op.Responses == nil || op.Responses.Len() == 0 {
				t.Errorf("%s %s documents no response", method, path)
			}
			open := op.Security != nil && len(*op.Security) == 0
			if wantOpen := !strings.HasPrefix(path, apiPrefix); open != wantOpen {
				t.Errorf("%s %s: open = %v, want %v", method, path, open, wantOpen)
			}
		}
	}
	slices.Sort(spec)
	if routes := engineOperations(t); !slices.Equal(spec, routes) {
		t.Errorf("openapi.json documents\n  %v\nthe engine serves\n  %v", spec, routes)
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore())
	w := a.get(t, "/api/v1/openapi.json")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if !bytes.Equal(w.Body.Bytes(), openAPISpec) {
		t.Error("the served document is not the embedded one")
	}
}
