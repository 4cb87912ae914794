package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	cases := []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="/console/console.js" defer></script>`},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", "<!doctype html>"},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/console/console.js", 200, "text/javascript; charset=utf-8", "'use strict';"},
		{"GET", "/console/console.css", 200, "text/css; charset=utf-8", ":root"},
		{"GET", "/console/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/console/", 404, "", ""},
		{"GET", "/console/index.html", 404, "", ""},
		{"GET", "/console/nope.js", 404, "", ""},
		{"GET", "/console/../console.go", 404, "", ""},
		{"GET", "/elsewhere", 404, "", ""},
		{"POST", "/", 405, "", ""},
		{"DELETE", "/console/console.js", 405, "", ""},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, resp.StatusCode, c.code)
			continue
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", c.method, c.path, got)
		}
		if c.code != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, got, c.ctype)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s %s: no %s", c.method, c.path, h)
			}
		}
		if !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: body lacks %q", c.method, c.path, c.body)
		}
		if c.method == "HEAD" && len(body) != 0 {
			t.Errorf("HEAD %s answered a body", c.path)
		}
	}
}

// TestNoRemoteReferences keeps the console usable without network access:
// the page and its assets load nothing from another origin.
func TestNoRemoteReferences(t *testing.T) {
	for _, name := range []string{"index.html", "console.js", "console.css", "favicon.svg"} {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		// The SVG namespace is a name, not a reference: nothing is fetched.
		s = strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, "")
		s = strings.ReplaceAll(s, `'http://www.w3.org/2000/svg'`, "")
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s refers to %q: everything must be embedded", name, bad)
			}
		}
	}
}
