// Package console serves the DLQ console: a small web UI, in plain HTML,
// CSS and JavaScript embedded in the binary, over the DLQ REST API of
// package dlqhttp. It needs no build step and loads nothing from the network.
//
// The page lives at "/" and its assets under "/console/"; it calls the API
// at "/api/dlq/" on the same origin with the bearer token the operator
// signs in with (kept in the tab's sessionStorage). `eventbus serve` mounts
// it next to the API:
//
//	mux.Handle("/api/dlq/", api)
//	mux.Handle("GET /{$}", console.Handler())
//	mux.Handle("GET /console/", console.Handler())
//
// A tenant-scoped token sees in the console what the API shows it: its
// tenant's entries only.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their media
// types, so that serving does not depend on the host's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp allows the page its own scripts, styles and images, and API calls to
// its own origin; nothing inline, nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// AssetPrefix is the path under which the console's assets are served.
const AssetPrefix = "/console/"

// Handler returns the console: GET (or HEAD) "/" and "/index.html" answer
// the page, GET "/console/<file>" its assets; other paths are 404 and other
// methods 405. Every answer has Cache-Control: no-store and a strict
// Content-Security-Policy.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return handler{files: files}
}

type handler struct{ files fs.FS }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", csp)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := h.fileName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		ctype = "application/octet-stream"
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// fileName maps a request path to an embedded file name.
func (h handler) fileName(p string) (string, bool) {
	switch p {
	case "/", "/index.html":
		return "index.html", true
	}
	rest, ok := strings.CutPrefix(p, AssetPrefix)
	if !ok || rest == "" || rest == "index.html" || strings.Contains(rest, "/") || !fs.ValidPath(rest) {
		return "", false
	}
	return rest, true
}
