// Package openapi serves taskwire's OpenAPI 3.1 document, openapi.json, which
// it embeds: every route of the HTTP API, every error code, and the schemas of
// the bodies, reflected from the Go types the server encodes (package build
// writes it; tests check it against the server's routes and answers).
package openapi

//go:generate go run ./gen

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"
)

//go:embed openapi.json
var document []byte

// etag is the quoted version of the document: a hash of its bytes.
var etag = func() string {
	sum := sha256.Sum256(document)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// Path is where the server serves the document.
const Path = "/api/v1/openapi.json"

// Document returns the document (JSON). The caller must not change it.
func Document() []byte { return document }

// Handler serves the document: public, cacheable for an hour, with an ETag
// (304 for a request that has it in If-None-Match).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", etag)
		if match(r.Header.Get("If-None-Match")) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(document)
	})
}

// match reports whether an If-None-Match header names the document's ETag.
func match(inm string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
