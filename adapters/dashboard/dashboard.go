package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"
)

// static holds the build `make web` writes to static/app/ (and
// static/.gitkeep, so that the pattern matches in a checkout without one).
//
//go:embed all:static
var static embed.FS

// Build returns the dashboard's build embedded in this binary, or nil when
// it was built without one (no Node when it was compiled).
func Build() fs.FS {
	sub, err := fs.Sub(static, "static/app")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil
	}
	return sub
}

// Cache lifetimes of the files served.
const (
	// cacheIndex makes browsers revalidate index.html on every load, so a
	// new build reaches them at once (a 304 while it is unchanged).
	cacheIndex = "no-cache"
	// cacheAsset is for Vite's files under assets/: their names carry a
	// hash of their content, so a name never changes meaning.
	cacheAsset = "public, max-age=31536000, immutable"
	// cacheOther is for the build's other files (favicon and the like),
	// whose names do not change with their content.
	cacheOther = "public, max-age=3600"
)

// Config configures the dashboard's handler.
type Config struct {
	// Files is the dashboard's build: index.html at its root, Vite's
	// hashed files under assets/. cmd/ passes Build(). Nil (or a build
	// without index.html) serves, at /, a page that says how to build it.
	Files fs.FS
	// TileURL is the map tile URL template the page loads tiles from (see
	// CheckTileURL): its origin is allowed in the Content-Security-Policy's
	// img-src. Empty: no tile server, only the page's own origin.
	TileURL string
}

// Handler serves the dashboard's files. Its ServeHTTP answers GET and
// HEAD of the paths Serves accepts, gzipped for clients that take it.
type Handler struct {
	files   map[string]*file // by URL path
	headers http.Header      // security headers of every response
	gzip    http.Handler
}

// file is one file of the build, held in memory.
type file struct {
	name         string
	body         []byte
	etag         string
	contentType  string
	cacheControl string
}

// New reads cfg.Files into memory and returns their handler. It fails on
// a TileURL CheckTileURL rejects, or a build that cannot be read.
func New(cfg Config) (*Handler, error) {
	origin, err := CheckTileURL(cfg.TileURL)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	h := &Handler{files: map[string]*file{}, headers: securityHeaders(origin)}
	if cfg.Files != nil {
		if _, err := fs.Stat(cfg.Files, "index.html"); err == nil {
			if err := h.load(cfg.Files); err != nil {
				return nil, fmt.Errorf("dashboard: read the build: %w", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dashboard: read the build: %w", err)
		}
	}
	if len(h.files) == 0 {
		h.files["/"] = newFile("not-built.html", []byte(notBuiltPage), cacheIndex)
	}
	h.gzip = gzhttp.GzipHandler(http.HandlerFunc(h.serve))
	return h, nil
}

// load reads every file of the build.
func (h *Handler) load(files fs.FS) error {
	return fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		cache := cacheOther
		switch {
		case name == "index.html":
			cache = cacheIndex
			h.files["/"] = newFile(name, body, cache)
		case strings.HasPrefix(name, "assets/"):
			cache = cacheAsset
		}
		h.files["/"+name] = newFile(name, body, cache)
		return nil
	})
}

func newFile(name string, body []byte, cacheControl string) *file {
	sum := sha256.Sum256(body)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	return &file{
		name: name, body: body, contentType: ct, cacheControl: cacheControl,
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
	}
}

// Serves reports whether ServeHTTP has a file for a request of method at
// the URL path p: GET or HEAD of / or of a file of the build.
func (h *Handler) Serves(method, p string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	_, ok := h.files[p]
	return ok
}

// ServeHTTP answers a request Serves accepts with its file (304 when its
// If-None-Match holds the file's ETag), and any other with a plain 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.gzip.ServeHTTP(w, r) }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	for k, v := range h.headers {
		w.Header()[k] = v
	}
	f, ok := h.files[r.URL.Path]
	if !ok || !h.Serves(r.Method, r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Cache-Control", f.cacheControl)
	w.Header().Set("ETag", f.etag)
	// ServeContent answers If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}

// securityHeaders are the headers of every response; tileOrigin, when
// not empty, may serve images.
func securityHeaders(tileOrigin string) http.Header {
	img := "'self' data: blob:"
	if tileOrigin != "" {
		img += " " + tileOrigin
	}
	csp := strings.Join([]string{
		"default-src 'self'",
		"img-src " + img,
		// Chromium, Firefox and Safari let 'self' match ws: and wss: of the
		// page's own host (CSP Level 3), which is where the WebSocket is.
		"connect-src 'self'",
		// Leaflet positions tiles and markers with inline styles.
		"style-src 'self' 'unsafe-inline'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
	return http.Header{
		"Content-Security-Policy": {csp},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
	}
}

// CheckTileURL checks a map tile URL template and returns its origin
// (scheme://host[:port]). A template is an absolute http or https URL
// whose text holds {z}, {x} and {y}, which the map replaces with a tile's
// zoom and coordinates, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png.
// The host must be one name ({s} subdomains are not supported: the
// Content-Security-Policy names one origin; OpenStreetMap itself asks
// for its single host). The empty template, no tiles, is valid and has
// no origin.
func CheckTileURL(template string) (origin string, err error) {
	if template == "" {
		return "", nil
	}
	var missing []string
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(template, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("tile URL %q lacks %s", template, strings.Join(missing, ", "))
	}
	if strings.Contains(template, "{s}") {
		return "", fmt.Errorf("tile URL %q: {s} subdomains are not supported; give one host (e.g. tile.openstreetmap.org)", template)
	}
	u, err := url.Parse(template)
	if err != nil {
		return "", fmt.Errorf("tile URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("tile URL %q: want an http:// or https:// URL with a host and no user", template)
	}
	return u.Scheme + "://" + u.Host, nil
}

// notBuiltPage is / in a binary built without the dashboard.
const notBuiltPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>tms: dashboard not built</title></head>
<body>
<h1>The dashboard was not built into this binary</h1>
<p>tms is running: its API is under <a href="/api/v1/openapi.json">/api/v1/</a>
(it needs a token) and its health at <a href="/healthz">/healthz</a>.</p>
<p>The dashboard is built from <code>web/</code> with Node.js (20 or newer):
run <code>make web</code> and then build tms again (<code>make build</code>), or
simply <code>make run</code>, which builds the dashboard whenever Node is on the
PATH and its sources changed.</p>
</body>
</html>
`
