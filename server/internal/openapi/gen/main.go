// Command gen writes openapi.json, the OpenAPI document the server embeds,
// from the operations of package build and the Go types of the API. Run by
// go generate in server/internal/openapi:
//
//	go generate ./internal/openapi
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/taskwire/taskwire/server/internal/openapi/build"
)

func main() {
	root := flag.String("root", "../../..", "the repository's root (its Go sources give the schemas' descriptions)")
	out := flag.String("o", "openapi.json", "the file to write")
	flag.Parse()
	b, err := build.Document(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}
