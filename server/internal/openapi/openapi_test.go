package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/taskwire/taskwire/server/internal/openapi"
	"github.com/taskwire/taskwire/server/internal/openapi/build"
)

// TestDocumentIsValid loads the embedded document with kin-openapi as an
// OpenAPI 3.1 document and validates it: the document's structure, every
// schema (JSON Schema 2020-12), every reference.
func TestDocumentIsValid(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if doc.OpenAPIMajorMinor() != "3.1" {
		t.Fatalf("the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3.1:\n%v", err)
	}
}

// TestDocumentIsGenerated: the embedded document is what build writes now,
// from the Go types and sources of the repository (go generate
// ./internal/openapi writes it again).
func TestDocumentIsGenerated(t *testing.T) {
	want, err := build.Document(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(openapi.Document(), want) {
		t.Fatal("openapi.json is not what the Go types and operations give: run `go generate ./internal/openapi` in server/ and commit it")
	}
}

// TestEveryErrorCodeIsDocumented reads the sources of the HTTP API: every code
// it writes is in the document's list (build.Codes), with its status, and every
// code listed is written somewhere.
func TestEveryErrorCodeIsDocumented(t *testing.T) {
	written := map[string]bool{
		// The codes of request validation errors (tasks.ValidationError.ErrorCode).
		"invalid_params": true, "unknown_kind": true,
	}
	status := regexp.MustCompile(`(?:writeError|writeDetailedError)\([a-z]+, (http\.Status\w+), "([a-z_]+)"`)
	for _, dir := range []string{"httpapi", "web"} {
		files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range status.FindAllSubmatch(b, -1) {
				code := string(m[2])
				written[code] = true
				var c *build.Code
				for i := range build.Codes {
					if build.Codes[i].Code == code {
						c = &build.Codes[i]
					}
				}
				if c == nil {
					t.Errorf("%s writes the code %q, which the document does not list (build.Codes)", f, code)
					continue
				}
				if want := "http.Status" + strings.ReplaceAll(http.StatusText(c.Status), " ", ""); want != string(m[1]) {
					t.Errorf("%s writes %q with %s; the document says %d (%s)", f, code, m[1], c.Status, want)
				}
			}
		}
	}
	for _, c := range build.Codes {
		if !written[c.Code] {
			t.Errorf("the document lists the code %q, which no handler writes", c.Code)
		}
	}
}

func TestHandlerCaches(t *testing.T) {
	srv := httptest.NewServer(openapi.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	tag := res.Header.Get("ETag")
	if res.StatusCode != 200 || tag == "" || !strings.Contains(res.Header.Get("Cache-Control"), "public") {
		t.Fatalf("GET: %d, ETag %q, Cache-Control %q", res.StatusCode, tag, res.Header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("If-None-Match", tag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("GET with If-None-Match: %d, want 304", res.StatusCode)
	}
}

func ExampleDocument() {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	_ = json.Unmarshal(openapi.Document(), &doc)
	methods := slices.Sorted(func(yield func(string) bool) {
		for m := range doc.Paths["/api/v1/tasks/{id}"] {
			if !yield(m) {
				return
			}
		}
	})
	fmt.Println(doc.OpenAPI, methods)
	// Output: 3.1.0 [delete get]
}
