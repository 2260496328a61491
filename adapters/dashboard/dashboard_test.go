package dashboard

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// fakeBuild is a build as Vite writes it: index.html, hashed assets and
// a favicon from web/public.
func fakeBuild() fstest.MapFS {
	return fstest.MapFS{
		"index.html":               {Data: []byte(`<!doctype html><script type="module" src="/assets/index-Ab12.js"></script>`)},
		"assets/index-Ab12.js":     {Data: []byte(strings.Repeat("console.log('tms');\n", 200))},
		"assets/index-Cd34.css":    {Data: []byte("body{margin:0}")},
		"favicon.svg":              {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
		"icons/vehicle-moving.png": {Data: []byte("\x89PNG\r\n\x1a\n")},
	}
}

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func request(t *testing.T, h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantSecurityHeaders checks the headers every response carries.
func wantSecurityHeaders(t *testing.T, w *httptest.ResponseRecorder, imgSrc string) {
	t.Helper()
	csp := w.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'self'", "img-src " + imgSrc, "connect-src 'self'",
		"style-src 'self' 'unsafe-inline'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d+";") && !strings.HasSuffix(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if got := w.Header().Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q", got)
	}
}

func TestServesTheBuild(t *testing.T) {
	t.Parallel()
	build := fakeBuild()
	h := newHandler(t, Config{Files: build, TileURL: "https://tile.openstreetmap.org/{z}/{x}/{y}.png"})
	files := []struct {
		path, file, cache, contentType string
	}{
		{"/", "index.html", "no-cache", "text/html"},
		{"/index.html", "index.html", "no-cache", "text/html"},
		{"/assets/index-Ab12.js", "assets/index-Ab12.js", "public, max-age=31536000, immutable", "text/javascript"},
		{"/assets/index-Cd34.css", "assets/index-Cd34.css", "public, max-age=31536000, immutable", "text/css"},
		{"/favicon.svg", "favicon.svg", "public, max-age=3600", "image/svg+xml"},
		{"/icons/vehicle-moving.png", "icons/vehicle-moving.png", "public, max-age=3600", "image/png"},
	}
	for _, f := range files {
		t.Run(f.path, func(t *testing.T) {
			t.Parallel()
			if !h.Serves(http.MethodGet, f.path) || !h.Serves(http.MethodHead, f.path) {
				t.Fatalf("Serves(GET/HEAD %s) = false", f.path)
			}
			w := request(t, h, http.MethodGet, f.path)
			if w.Code != http.StatusOK || w.Body.String() != string(build[f.file].Data) {
				t.Fatalf("%d %q, want 200 and %s", w.Code, w.Body, f.file)
			}
			if got := w.Header().Get("Cache-Control"); got != f.cache {
				t.Errorf("Cache-Control %q, want %q", got, f.cache)
			}
			if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, f.contentType) {
				t.Errorf("Content-Type %q, want %s", got, f.contentType)
			}
			wantSecurityHeaders(t, w, "'self' data: blob: https://tile.openstreetmap.org")

			etag := w.Header().Get("ETag")
			if len(etag) < 3 || etag[0] != '"' {
				t.Fatalf("ETag %q, want a strong one", etag)
			}
			w = request(t, h, http.MethodGet, f.path, "If-None-Match", etag)
			if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Errorf("If-None-Match with the ETag: %d %q, want 304 and no body", w.Code, w.Body)
			}
			if got := w.Header().Get("ETag"); got != etag {
				t.Errorf("304's ETag %q, want %q", got, etag)
			}
			w = request(t, h, http.MethodGet, f.path, "If-None-Match", `"other"`)
			if w.Code != http.StatusOK {
				t.Errorf("If-None-Match with another ETag: %d, want 200", w.Code)
			}
			w = request(t, h, http.MethodHead, f.path)
			if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
				t.Errorf("HEAD: %d, %d bytes, ETag %q", w.Code, w.Body.Len(), w.Header().Get("ETag"))
			}
		})
	}

	t.Run("ETags differ with content", func(t *testing.T) {
		t.Parallel()
		a := request(t, h, http.MethodGet, "/").Header().Get("ETag")
		b := request(t, h, http.MethodGet, "/favicon.svg").Header().Get("ETag")
		changed := fakeBuild()
		changed["index.html"] = &fstest.MapFile{Data: []byte("<!doctype html><p>a new build</p>")}
		c := request(t, newHandler(t, Config{Files: changed}), http.MethodGet, "/").Header().Get("ETag")
		if a == b || a == c {
			t.Errorf("ETags %q (index), %q (favicon), %q (a new index): want three different", a, b, c)
		}
	})

	t.Run("what is not in the build is not served", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/assets/", "/assets/missing.js", "/icons", "/api/v1/vehicles", "/../index.html", "/index.htm"} {
			if h.Serves(http.MethodGet, p) {
				t.Errorf("Serves(GET %s) = true", p)
			}
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
			if h.Serves(m, "/") {
				t.Errorf("Serves(%s /) = true", m)
			}
			if w := request(t, h, m, "/"); w.Code != http.StatusNotFound {
				t.Errorf("%s /: %d, want 404", m, w.Code)
			}
		}
	})

	t.Run("gzip when accepted", func(t *testing.T) {
		t.Parallel()
		want := string(build["assets/index-Ab12.js"].Data)
		w := request(t, h, http.MethodGet, "/assets/index-Ab12.js", "Accept-Encoding", "gzip, deflate, br")
		if got := w.Header().Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", got)
		}
		if !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
			t.Errorf("Vary %q lacks Accept-Encoding", w.Header().Get("Vary"))
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil || string(body) != want {
			t.Errorf("gunzipped body %d bytes (%v), want the %d of the file", len(body), err, len(want))
		}
		if w.Body.Len() >= len(want)/2 {
			t.Errorf("gzipped %d bytes of %d", w.Body.Len(), len(want))
		}
		if w := request(t, h, http.MethodGet, "/assets/index-Ab12.js"); w.Header().Get("Content-Encoding") != "" || w.Body.String() != want {
			t.Errorf("without Accept-Encoding: Content-Encoding %q, %d bytes", w.Header().Get("Content-Encoding"), w.Body.Len())
		}
	})
}

func TestServesAPageSayingHowToBuildWithoutABuild(t *testing.T) {
	t.Parallel()
	for name, files := range map[string]Config{
		"no build":              {},
		"a build without index": {Files: fstest.MapFS{"assets/x.js": {Data: []byte("x")}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHandler(t, files)
			w := request(t, h, http.MethodGet, "/")
			if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
			}
			for _, s := range []string{"not built", "make web", "make run"} {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("the page does not say %q: %s", s, w.Body)
				}
			}
			if got := w.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache (a build may come with the next binary)", got)
			}
			wantSecurityHeaders(t, w, "'self' data: blob:")
			if h.Serves(http.MethodGet, "/assets/x.js") {
				t.Error("serves an asset of a build without index.html")
			}
		})
	}
}

func TestCSPNamesTheTileOrigin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ tileURL, imgSrc string }{
		{"", "'self' data: blob:"},
		{"https://tiles.example.cn:8443/maps/{z}/{x}/{y}.png?key=abc", "'self' data: blob: https://tiles.example.cn:8443"},
		{"http://127.0.0.1:9/{z}/{x}/{y}.png", "'self' data: blob: http://127.0.0.1:9"},
	} {
		w := request(t, newHandler(t, Config{Files: fakeBuild(), TileURL: c.tileURL}), http.MethodGet, "/")
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "img-src "+c.imgSrc+";") {
			t.Errorf("tile URL %q: Content-Security-Policy %q, want img-src %s", c.tileURL, csp, c.imgSrc)
		}
		if c.tileURL != "" && strings.Count(csp, "tiles.example.cn")+strings.Count(csp, "127.0.0.1") != 1 {
			t.Errorf("tile URL %q: the tile origin is allowed for more than images: %q", c.tileURL, csp)
		}
	}
}

func TestCheckTileURL(t *testing.T) {
	t.Parallel()
	for _, good := range []string{
		"", "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "http://tiles.local/{z}/{y}/{x}",
		"https://maps.example.com/tiles/{z}/{x}/{y}@2x.png?token=t",
	} {
		if _, err := CheckTileURL(good); err != nil {
			t.Errorf("CheckTileURL(%q): %v", good, err)
		}
	}
	for _, bad := range []string{
		"https://tile.openstreetmap.org/{z}/{x}.png", "tile.openstreetmap.org/{z}/{x}/{y}.png",
		"ftp://tiles/{z}/{x}/{y}", "javascript:alert(1)//{z}{x}{y}", "https://{s}.tile.example.org/{z}/{x}/{y}.png",
		"https://user:pw@tiles.example.org/{z}/{x}/{y}.png", "/tiles/{z}/{x}/{y}.png", "https:///{z}/{x}/{y}",
	} {
		if _, err := CheckTileURL(bad); err == nil {
			t.Errorf("CheckTileURL(%q) accepted it", bad)
		}
	}
	if _, err := New(Config{TileURL: "https://tiles/{z}"}); err == nil || !strings.Contains(err.Error(), "{x}") {
		t.Errorf("New with a bad tile URL: %v, want an error naming what it lacks", err)
	}
}
