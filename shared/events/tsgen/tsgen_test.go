package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestContractUpToDate fails when the committed TypeScript contract is not what the
// Go contract generates today.
func TestContractUpToDate(t *testing.T) {
	root := repoRoot(t)
	want, err := Generate(root)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	path := filepath.Join(root, OutPath)
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the committed contract: %v (run: go run ./shared/events/tsgen)", err)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("%s is stale; run: go run ./shared/events/tsgen\n%s", OutPath, firstDifference(have, want))
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	root := repoRoot(t)
	a, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := Generate(root)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("two runs differ: %s", firstDifference(a, b))
		}
	}
}

// TestContractShape pins the parts of the output the web app relies on.
func TestContractShape(t *testing.T) {
	out, err := Generate(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	src := string(out)
	for _, want := range []string{
		`export type TaskState = "queued" | "running" | "completed" | "failed" | "cancelled";`,
		`export type TaskKind = "export";`,
		"export interface TaskRecord {\n  taskId: string;\n",
		"  etaSeconds?: number;\n", // pointer with omitempty: optional, never null
		"  result?: TaskResult;\n", // nested struct behind a pointer
		"  createdAt: string;\n",   // time.Time
		"  params?: unknown;\n",    // json.RawMessage
		"export const MaxExportRows = 1000000;\n",
		`  "task:progress": (payload: Progress) => void;`,
		`  "task:state": (payload: TaskRecord) => void;`,
		`  "task:subscribe": (request: SubscribeRequest, ack: (reply: SubscribeAck | AckError) => void) => void;`,
		`  TaskCancel: "task:cancel",`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(src, "owner:") || strings.Contains(src, "owner?:") {
		t.Error(`the owner field (json:"-") leaked into the contract`)
	}
}

type inner struct {
	A string `json:"a"`
}

type sample struct {
	inner
	Name     string            `json:"name"`
	Opt      string            `json:"opt,omitempty"`
	Ptr      *int              `json:"ptr"`
	OptPtr   *int              `json:"optPtr,omitempty"`
	List     []string          `json:"list"`
	OptList  []int             `json:"optList,omitempty"`
	Labels   map[string]bool   `json:"labels,omitempty"`
	When     time.Time         `json:"when"`
	Struct   inner             `json:"struct,omitempty"` // omitempty does not omit structs
	Zero     inner             `json:"zero,omitzero"`
	Raw      json.RawMessage   `json:"raw"`
	Bytes    []byte            `json:"bytes"`
	Any      any               `json:"any"`
	Anon     struct{ B int }   `json:"anon"`
	Skip     string            `json:"-"`
	Untagged int               //nolint
	unexp    int               //nolint
	Nested   map[string][]uint `json:"nested"`
}

// TestFieldMapping checks that the TypeScript follows encoding/json for each kind
// of field.
func TestFieldMapping(t *testing.T) {
	g := &generator{root: repoRoot(t), sources: map[string]*pkgSource{}, names: map[reflect.Type]string{}, byName: map[string]reflect.Type{}}
	body, err := g.structBody(reflect.TypeFor[sample](), "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"a: string;",
		"name: string;",
		"opt?: string;",
		"ptr: number | null;",
		"optPtr?: number;",
		"list: string[] | null;",
		"optList?: number[];",
		"labels?: { [key: string]: boolean };",
		"when: string;",
		"struct: inner;",
		"zero?: inner;",
		"raw: unknown;",
		"bytes: string | null;",
		"any: unknown;",
		"anon: {\n  B: number;\n};",
		"Untagged: number;",
		"nested: { [key: string]: number[] } | null;",
	}, "\n") + "\n"
	if body != want {
		t.Errorf("got\n%s\nwant\n%s", body, want)
	}
	_ = sample{}.unexp
}

type custom struct{}

func (custom) MarshalJSON() ([]byte, error) { return []byte(`1`), nil }

func TestRejectsUnknownEncodings(t *testing.T) {
	g := &generator{root: repoRoot(t), sources: map[string]*pkgSource{}, names: map[reflect.Type]string{}, byName: map[string]reflect.Type{}}
	if _, err := g.typeExpr(reflect.TypeFor[struct {
		C custom `json:"c"`
	}]()); err == nil || !strings.Contains(err.Error(), "own JSON encoding") {
		t.Errorf("a type with MarshalJSON: err = %v, want an error naming it", err)
	}
	if _, err := g.typeExpr(reflect.TypeFor[map[int]string]()); err == nil {
		t.Error("a map with int keys: no error")
	}
	if _, err := g.typeExpr(reflect.TypeFor[chan int]()); err == nil {
		t.Error("a channel: no error")
	}
}

func TestEventTableMatchesSource(t *testing.T) {
	g := &generator{root: repoRoot(t), sources: map[string]*pkgSource{}, names: map[reflect.Type]string{}, byName: map[string]reflect.Type{}}
	if err := g.checkEvents(); err != nil {
		t.Fatal(err)
	}
	// A constant of package events that tsgen does not list must be reported.
	saved := serverEvents
	defer func() { serverEvents = saved }()
	serverEvents = serverEvents[1:]
	if err := g.checkEvents(); err == nil || !strings.Contains(err.Error(), "TaskProgress") {
		t.Errorf("missing TaskProgress: err = %v", err)
	}
}

func TestCheckFlagReportsStaleFile(t *testing.T) {
	root := repoRoot(t)
	out := filepath.Join(t.TempDir(), "contract.ts")
	var stderr bytes.Buffer
	if err := run([]string{"-root", root, "-out", out}, &bytes.Buffer{}, &stderr); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := run([]string{"-root", root, "-out", out, "-check"}, &bytes.Buffer{}, &stderr); err != nil {
		t.Fatalf("check of a fresh file: %v", err)
	}
	b, _ := os.ReadFile(out)
	if err := os.WriteFile(out, bytes.Replace(b, []byte("percent: number;"), []byte("percent: string;"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"-root", root, "-out", out, "-check"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "stale") || !strings.Contains(err.Error(), "percent") {
		t.Fatalf("check of an edited file: err = %v, want stale at the percent line", err)
	}
}

func TestJSDoc(t *testing.T) {
	if got := jsDoc("", ""); got != "" {
		t.Errorf("empty doc: %q", got)
	}
	if got := jsDoc("  ", "One line with */ inside."); got != "  /** One line with *\\/ inside. */\n" {
		t.Errorf("one line: %q", got)
	}
	if got, want := jsDoc("", "a\nb", "c"), "/**\n * a\n * b\n *\n * c\n */\n"; got != want {
		t.Errorf("paragraphs: got %q, want %q", got, want)
	}
}
