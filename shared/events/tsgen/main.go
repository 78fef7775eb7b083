// Command tsgen writes the TypeScript form of taskwire's browser contract: the event
// names of package events, their payload types, the task record of package tasks
// and the bounds the web app checks before it sends a request.
//
// The types are read by reflection from the Go values, so they follow encoding/json
// exactly (json tags, omitempty, pointers, time.Time); the doc comments, the
// constant names and the values of string enums are read from the Go source of the
// two packages.
//
// Run it from anywhere inside the repository:
//
//	go run ./shared/events/tsgen          # rewrite frontend/packages/client/src/generated/contract.ts
//	go run ./shared/events/tsgen -check   # exit 1 when that file is stale
//
// The test of this package fails when the committed file differs from what tsgen
// writes, so a change of the Go contract that the web app does not follow fails
// both here and in the app's type check.
package main

//go:generate go run .

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// OutPath is where the contract is written, relative to the repository root.
const OutPath = "frontend/packages/client/src/generated/contract.ts"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tsgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tsgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "repository root (default: found by walking up from the working directory to go.work)")
	out := fs.String("out", "", "output file (default: <root>/"+OutPath+"; - for stdout)")
	check := fs.Bool("check", false, "do not write; fail when the output file is not up to date")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		r, err := FindRoot(wd)
		if err != nil {
			return err
		}
		*root = r
	}
	src, err := Generate(*root)
	if err != nil {
		return err
	}
	if *out == "-" {
		_, err := stdout.Write(src)
		return err
	}
	if *out == "" {
		*out = filepath.Join(*root, OutPath)
	}
	if *check {
		have, err := os.ReadFile(*out)
		if err != nil {
			return err
		}
		if !bytes.Equal(have, src) {
			return fmt.Errorf("%s is stale: run go run ./shared/events/tsgen (%s)", *out, firstDifference(have, src))
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, src, 0o644)
}

// FindRoot returns the repository root: the nearest directory at or above dir that
// holds go.work and shared/events.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.work")) && isDir(filepath.Join(dir, "shared", "events")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no repository root (a directory with go.work and shared/events) above the working directory; pass -root")
		}
		dir = parent
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// firstDifference describes the first line where have and want differ.
func firstDifference(have, want []byte) string {
	hl := bytes.Split(have, []byte("\n"))
	wl := bytes.Split(want, []byte("\n"))
	for i := 0; i < len(hl) || i < len(wl); i++ {
		var h, w []byte
		if i < len(hl) {
			h = hl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if i >= len(hl) || i >= len(wl) || !bytes.Equal(h, w) {
			return fmt.Sprintf("first difference at line %d: have %q, want %q", i+1, h, w)
		}
	}
	return "no difference"
}
