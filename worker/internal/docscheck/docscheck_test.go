// Package docscheck compiles the Go code blocks of the repository's README files,
// so that a snippet a reader copies builds. It lives in the worker's module
// because that module requires everything the snippets import (the worker SDK,
// the emitter, go-redis).
//
// Every ```go block is a whole program (it starts with a package clause) and is
// built with `go build`, through an overlay, as a package of this module. A block
// that is only a fragment (a line or two inside a list) says so with the line
// <!-- docscheck: fragment --> right before it; any other block that is not a
// program fails the test.
package docscheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fragmentMarker, on the line before a block, exempts it from being compiled.
const fragmentMarker = "<!-- docscheck: fragment -->"

type block struct {
	file     string
	line     int
	code     string
	fragment bool
}

var (
	fenceOpen  = regexp.MustCompile("^(\\s*)```go\\s*$")
	fenceClose = regexp.MustCompile("^\\s*```\\s*$")
)

// blocks returns the ```go blocks of a Markdown file.
func blocks(path string) ([]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []block
	var cur *block
	var indent, prev string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil:
			if m := fenceOpen.FindStringSubmatch(line); m != nil {
				cur = &block{file: path, line: n, fragment: strings.TrimSpace(prev) == fragmentMarker}
				indent = m[1]
			}
			if strings.TrimSpace(line) != "" {
				prev = line
			}
		case fenceClose.MatchString(line):
			out = append(out, *cur)
			cur = nil
		default:
			cur.code += strings.TrimPrefix(line, indent) + "\n"
		}
	}
	return out, sc.Err()
}

// readmes are the README.md files of the repository, outside node_modules.
func readmes(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "README.md" {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadmeGoBlocksCompile(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	overlay := map[string]string{}
	var pkgs []string
	programs := map[string]block{}
	tmp := t.TempDir()
	for _, readme := range readmes(t, root) {
		bs, err := blocks(readme)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			rel, _ := filepath.Rel(root, b.file)
			switch {
			case b.fragment:
				continue
			case !regexp.MustCompile(`(?m)^package \w+`).MatchString(b.code):
				t.Errorf("%s:%d: a ```go block that is not a whole program (no package clause): make it one, or mark it %s", rel, b.line, fragmentMarker)
				continue
			}
			name := fmt.Sprintf("block%d", len(pkgs))
			src := filepath.Join(tmp, name+".go")
			if err := os.WriteFile(src, []byte(b.code), 0o644); err != nil {
				t.Fatal(err)
			}
			// A package directory that exists only in the overlay.
			overlay[filepath.Join(here, "blocks", name, "main.go")] = src
			pkgs = append(pkgs, "./blocks/"+name)
			programs["blocks/"+name] = block{file: rel, line: b.line}
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("no ```go block found in any README.md")
	}
	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		cmd := exec.Command("go", "build", "-overlay", ovPath, "-o", os.DevNull, pkg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b := programs[strings.TrimPrefix(pkg, "./")]
			t.Errorf("%s:%d: the ```go block does not compile:\n%s", b.file, b.line, out)
		}
	}
	t.Logf("%d README blocks compiled", len(pkgs))
}
