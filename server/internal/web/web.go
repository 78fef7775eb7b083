// Package web serves taskwire's web app: the files that `npm run build` writes from
// frontend/ into dist/, embedded in the binary so that `go build` needs no Node step.
// Dir serves a directory instead (STATIC_DIR), for trying a fresh build without
// rebuilding the server.
//
// Every path that names no file and has no extension gets index.html, so the app's
// own routes survive a reload; under /admin/ it gets admin/index.html, the page of
// the operator dashboard (which holds no data: its API needs the operator
// credential). Files under assets/ carry a content hash in their
// names and are cached for a year; everything else is revalidated on every use
// (ETag). Text files of the embedded build are also held gzip-compressed.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Cache policies.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// contentSecurityPolicy limits the page to its own origin: scripts, styles,
// connections (HTTP and the Socket.IO websocket) and frames.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// contentTypes fixes the media types of what a build contains, so the answer does
// not depend on the host's mime.types.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".woff":        "font/woff",
	".txt":         "text/plain; charset=utf-8",
	".wasm":        "application/wasm",
}

// compressible are the extensions worth gzipping.
var compressible = map[string]bool{
	".html": true, ".js": true, ".mjs": true, ".css": true, ".json": true, ".map": true,
	".svg": true, ".txt": true, ".webmanifest": true, ".wasm": true, ".ico": true,
}

// minGzipSize is the smallest file worth compressing.
const minGzipSize = 1024

// Handler serves the embedded build.
func Handler() http.Handler {
	return embedded()
}

var embedded = sync.OnceValue(func() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("web: " + err.Error()) // dist is a constant directory name
	}
	s := &site{fsys: sub, files: map[string]*file{}}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		s.files[name] = newFile(name, data, true)
		return nil
	})
	if err != nil {
		panic("web: reading the embedded build: " + err.Error())
	}
	return s
})

// Dir serves the build in directory dir, reading it on every request, so a rebuild
// shows without a restart.
func Dir(dir string) http.Handler {
	return &site{fsys: os.DirFS(dir)}
}

// site serves one build.
type site struct {
	fsys fs.FS
	// files holds every file when the build cannot change (embedded); nil for a
	// directory.
	files map[string]*file
}

// file is one file of the build, ready to serve.
type file struct {
	name  string
	data  []byte
	gz    []byte // nil when not worth it
	etag  string
	ctype string
	cache string
}

func newFile(name string, data []byte, compress bool) *file {
	sum := sha256.Sum256(data)
	f := &file{
		name:  name,
		data:  data,
		etag:  `"` + hex.EncodeToString(sum[:12]) + `"`,
		ctype: contentType(name),
		cache: cacheRevalidate,
	}
	if strings.HasPrefix(name, "assets/") {
		f.cache = cacheImmutable
	}
	if compress && compressible[path.Ext(name)] && len(data) >= minGzipSize {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(data)
		_ = zw.Close()
		if b.Len() < len(data)*9/10 {
			f.gz = b.Bytes()
		}
	}
	return f
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// open returns the file called name (slash-separated, no leading slash).
func (s *site) open(name string) (*file, error) {
	if s.files != nil {
		if f, ok := s.files[name]; ok {
			return f, nil
		}
		return nil, fs.ErrNotExist
	}
	st, err := fs.Stat(s.fsys, name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fs.ErrNotExist
	}
	data, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return nil, err
	}
	return newFile(name, data, false), nil
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	f, err := s.open(name)
	if errors.Is(err, fs.ErrNotExist) && spaRoute(name) {
		f, err = s.open(pageOf(name))
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", "the web app could not be read")
		return
	}
	s.serve(w, r, f)
}

// pageOf returns the page that serves the app route name: admin/index.html
// (the operator dashboard, its own bundle) under admin/, else index.html.
func pageOf(name string) string {
	if name == "admin" || strings.HasPrefix(name, "admin/") {
		return "admin/index.html"
	}
	return "index.html"
}

// spaRoute reports whether a missing path should get index.html: a page of the
// app, not a missing asset (a script answered with HTML helps nobody).
func spaRoute(name string) bool {
	return name != "assets" && !strings.HasPrefix(name, "assets/") && path.Ext(name) == ""
}

func (s *site) serve(w http.ResponseWriter, r *http.Request, f *file) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", f.cache)
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(f.ctype, "text/html") {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "same-origin")
	}
	body, etag := f.data, f.etag
	if compressible[path.Ext(f.name)] {
		h.Add("Vary", "Accept-Encoding")
		if f.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	// ServeContent answers conditional requests, ranges and HEAD.
	// The zero time leaves Last-Modified out: embedded files have no date.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reads an Accept-Encoding header.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
			if coding == "gzip" {
				return false
			}
			continue
		}
		return true
	}
	return false
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": message}})
	_, _ = w.Write(append(body, '\n'))
}
