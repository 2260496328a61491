package layering

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tmsfleet/tms"

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// listPackages is `go list -json ./...` from the module's root.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// under reports whether import path p is dir or inside it.
func under(p, dir string) bool {
	return p == module+"/"+dir || strings.HasPrefix(p, module+"/"+dir+"/")
}

// domainMayImport lists what domain packages may import besides the
// standard library and each other: pure libraries with no I/O (ids, a
// faster JSON decoder for the hot path).
var domainMayImport = []string{"github.com/google/uuid", "github.com/goccy/go-json"}

// runsProjections reports whether p is machinery that runs projections
// (the projector, the rebuild), not a projection.
func runsProjections(p string) bool {
	return under(p, "projections/projector") || under(p, "projections/rebuild")
}

func TestLayering(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			switch {
			case under(imp, "cmd"):
				t.Errorf("%s imports %s: nothing may import cmd", p.ImportPath, imp)
			case under(p.ImportPath, "domain") && strings.Contains(strings.Split(imp, "/")[0], "."):
				if !under(imp, "domain") && !slices.Contains(domainMayImport, imp) {
					t.Errorf("%s imports %s: domain imports only the standard library and domain packages", p.ImportPath, imp)
				}
			case (under(p.ImportPath, "projections") || under(p.ImportPath, "pipeline")) &&
				(under(imp, "adapters/httpapi") || under(imp, "adapters/ws")):
				t.Errorf("%s imports %s: read models and processors do not know how they are served", p.ImportPath, imp)
			case under(p.ImportPath, "projections") && !runsProjections(p.ImportPath) && under(imp, "adapters/kafka"):
				t.Errorf("%s imports %s: a projection names its topics (domain/event) and leaves Kafka to projections/projector", p.ImportPath, imp)
			}
		}
		// Tests of domain packages run the domain alone too.
		if under(p.ImportPath, "domain") {
			for _, imp := range append(p.TestImports, p.XTestImports...) {
				if under(imp, "adapters") || under(imp, "pipeline") || under(imp, "projections") || under(imp, "cmd") {
					t.Errorf("%s's tests import %s: domain tests use the domain alone", p.ImportPath, imp)
				}
			}
		}
	}
}
