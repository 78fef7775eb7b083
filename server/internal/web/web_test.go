package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assetRefs lists the /assets/ files index.html loads.
func assetRefs(t *testing.T, index string) []string {
	t.Helper()
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(index, -1)
	var out []string
	for _, m := range refs {
		out = append(out, m[1])
	}
	return out
}

func TestEmbeddedIndex(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/", "/index.html", "/tasks/abc", "/some/deep/route"} {
		res := get(t, h, http.MethodGet, target, nil)
		b := body(t, res)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", target, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache (a new build must show at once)", target, cc)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", target, csp)
		}
		if !strings.Contains(b, "<title>taskwire</title>") || !strings.Contains(b, `role="status"`) {
			t.Errorf("GET %s: not the app's index.html:\n%.300s", target, b)
		}
	}
}

// TestEmbeddedAssets checks that every file index.html loads is in the build, with
// its type and a long cache: a half-updated dist/ fails here.
func TestEmbeddedAssets(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, http.MethodGet, "/", nil))
	refs := assetRefs(t, index)
	var js, css int
	for _, ref := range refs {
		res := get(t, h, http.MethodGet, ref, nil)
		b := body(t, res)
		if res.StatusCode != http.StatusOK || len(b) == 0 {
			t.Fatalf("GET %s: status %d, %d bytes", ref, res.StatusCode, len(b))
		}
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", ref, cc)
		}
		ct := res.Header.Get("Content-Type")
		switch filepath.Ext(ref) {
		case ".js":
			js++
			if ct != "text/javascript; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", ref, ct)
			}
		case ".css":
			css++
			if ct != "text/css; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", ref, ct)
			}
		case ".svg":
			if ct != "image/svg+xml" {
				t.Errorf("GET %s: Content-Type %q", ref, ct)
			}
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", ref)
		}
	}
	if js == 0 || css == 0 {
		t.Fatalf("index.html loads %d scripts and %d stylesheets from /assets/: %q", js, css, refs)
	}
}

func TestMissingFiles(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/assets/nope.js", "/assets/", "/favicon.ico", "/robots.txt", "/x/y.css"} {
		res := get(t, h, http.MethodGet, target, nil)
		b := body(t, res)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, res.StatusCode)
		}
		if !strings.Contains(b, `"code":"not_found"`) {
			t.Errorf("GET %s: body %.200q", target, b)
		}
	}
}

func TestPathsStayInsideTheBuild(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/../go.mod", "/..%2f..%2fweb.go", "/assets/../../web.go", "/%2e%2e/web_test.go"} {
		res := get(t, h, http.MethodGet, target, nil)
		b := body(t, res)
		if strings.Contains(b, "package web") || strings.Contains(b, "module ") {
			t.Errorf("GET %s leaked a file outside the build", target)
		}
	}
}

func TestGzip(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, http.MethodGet, "/", nil))
	var script string
	for _, ref := range assetRefs(t, index) {
		if strings.HasSuffix(ref, ".js") {
			script = ref
		}
	}
	plain := get(t, h, http.MethodGet, script, nil)
	plainBody := body(t, plain)
	if plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("no Accept-Encoding, got Content-Encoding %q", plain.Header.Get("Content-Encoding"))
	}
	zipped := get(t, h, http.MethodGet, script, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if zipped.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(zipped.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip accepted: Content-Encoding %q, Vary %q", zipped.Header.Get("Content-Encoding"), zipped.Header.Get("Vary"))
	}
	if zipped.Header.Get("ETag") == plain.Header.Get("ETag") {
		t.Error("the gzip and identity variants share an ETag")
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(unzipped) != plainBody {
		t.Fatal("gzip body does not decompress to the file")
	}
	refused := get(t, h, http.MethodGet, script, map[string]string{"Accept-Encoding": "gzip;q=0, identity"})
	if refused.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0: got gzip anyway")
	}
}

func TestConditionalAndHead(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/", nil)
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	again := get(t, h, http.MethodGet, "/", map[string]string{"If-None-Match": etag})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: status %d, want 304", again.StatusCode)
	}
	head := get(t, h, http.MethodHead, "/", nil)
	if head.StatusCode != http.StatusOK || body(t, head) != "" || head.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, Content-Length %q", head.StatusCode, head.Header.Get("Content-Length"))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	res := get(t, Handler(), http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := Dir(dir)
	if res := get(t, h, http.MethodGet, "/", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("empty directory: status %d, want 404", res.StatusCode)
	}
	write("index.html", "<p>one</p>")
	write("assets/app-abc123.js", "console.log(1)")
	res := get(t, h, http.MethodGet, "/route", nil)
	if b := body(t, res); res.StatusCode != http.StatusOK || b != "<p>one</p>" {
		t.Fatalf("GET /route: %d %q", res.StatusCode, b)
	}
	res = get(t, h, http.MethodGet, "/assets/app-abc123.js", nil)
	if res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("asset headers: %v", res.Header)
	}
	// A rebuild shows without a restart.
	write("index.html", "<p>two</p>")
	if b := body(t, get(t, h, http.MethodGet, "/", nil)); b != "<p>two</p>" {
		t.Errorf("after rewrite: %q", b)
	}
	if res := get(t, h, http.MethodGet, "/assets", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /assets (a directory): status %d, want 404", res.StatusCode)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"GZIP":                true,
		"deflate, gzip;q=1.0": true,
		"gzip;q=0":            false,
		"gzip; q=0.000":       false,
		"*":                   true,
		"identity":            false,
		"br":                  false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestEmbeddedFilesAreCompressedOnce(t *testing.T) {
	s := Handler().(*site)
	var n int
	for name, f := range s.files {
		if f.gz != nil {
			n++
			zr, err := gzip.NewReader(bytes.NewReader(f.gz))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(zr)
			if !bytes.Equal(data, f.data) {
				t.Errorf("%s: gzip copy differs", name)
			}
		}
	}
	if n == 0 {
		t.Error("no embedded file is held compressed")
	}
}
