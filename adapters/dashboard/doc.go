// Package dashboard serves the web dashboard's files: the page a
// dispatcher keeps open, built from web/ by Vite and embedded in the tms
// binary, so that one binary (and `make run`) gives a newcomer a map, not
// JSON. It serves files only: the page reads everything it shows through
// the public API and WebSocket (adapters/httpapi, adapters/ws), with the
// caller's token, as any other client would.
//
// # What is served
//
// The build (Config.Files; cmd/ passes Build, the embedded
// static/app/ that `make web` writes) is read whole into memory when the
// handler is made, each file with a strong ETag of its content. index.html
// is served at / (and /index.html) with Cache-Control: no-cache, so that a
// browser revalidates it on every load and sees a new build at once (a
// 304 while it is unchanged). Vite's content-hashed files under assets/
// are immutable and cached for a year. Every other file of the build
// (favicon and the like, from web/public/) is cached for an hour. Paths
// the build does not hold are not this handler's: Serves says so, and the
// API answers them with its 404 problem.
//
// A binary built without Node has no build: / then serves a short page
// that says the dashboard was not built and how to build it.
//
// # Security headers
//
// Every response carries a Content-Security-Policy that allows scripts,
// styles, fonts and connections of the page's own origin only (plus
// inline styles, which Leaflet sets, and images from the map tile
// server's origin, Config.TileURL), forbids framing, and
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer. The
// files need no token: they are the same for everyone and hold no data;
// the page asks for a token and sends it to the API.
//
// # Compression
//
// New's handler gzips responses for clients that accept it, through
// klauspost/compress's gzhttp (already in the module graph through
// franz-go): minified JavaScript typically shrinks to a third. The ETag is
// the same for both encodings; responses vary by Accept-Encoding.
package dashboard
