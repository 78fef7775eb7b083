package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository root, relative to this package.
const repoRoot = ".."

// binary is what the deploy files must know about one of taskwire's binaries.
// The tests import nothing from the binaries; instead this table is checked
// against their sources (TestBinariesMatchTheirSources), so renaming an
// environment variable or a health path there fails here.
type binary struct {
	// name is the binary, the container name and the last element of the image
	// name (before the tag).
	name string
	// module is the Go module directory, configDir the package that reads the
	// environment.
	module, configDir string
	// addrEnv is the listen address the probes use; defaultAddr its default.
	addrEnv, defaultAddr string
	// liveness and readiness are the probe paths served on addrEnv.
	liveness, readiness string
	// shutdownEnv bounds the graceful shutdown; defaultShutdown is its default.
	shutdownEnv     string
	defaultShutdown time.Duration
	// required must be set in every manifest (an unset one would start the
	// binary with a default that is wrong in a cluster).
	required []string
	// defaults are the defaults of other variables the tests compare.
	defaults map[string]string
}

var binaries = []binary{
	{
		name:            "taskwire-server",
		module:          "server",
		configDir:       "server/internal/config",
		addrEnv:         "HTTP_ADDR",
		defaultAddr:     ":8080",
		liveness:        "/healthz",
		readiness:       "/readyz",
		shutdownEnv:     "SHUTDOWN_TIMEOUT",
		defaultShutdown: 15 * time.Second,
		// One secret shared by all replicas, or sessions break across them.
		required: []string{"REDIS_URL", "TASKWIRE_SECRET"},
		defaults: map[string]string{"SOCKETIO_KEY": "socket.io", "TASKWIRE_PREFIX": "taskwire", "TASK_TTL": "24h", "TASK_MAX_ATTEMPTS": "3"},
	},
	{
		name:            "taskwire-worker",
		module:          "worker",
		configDir:       "worker/internal/config",
		addrEnv:         "METRICS_ADDR",
		defaultAddr:     ":9091",
		liveness:        "/healthz",
		readiness:       "/readyz",
		shutdownEnv:     "WORKER_SHUTDOWN_TIMEOUT",
		defaultShutdown: 25 * time.Second,
		// METRICS_ADDR may be "off"; the probes need it on.
		required: []string{"REDIS_URL", "METRICS_ADDR"},
		defaults: map[string]string{"SOCKETIO_KEY": "socket.io", "TASKWIRE_PREFIX": "taskwire", "TASK_TTL": "24h", "WORKER_CONCURRENCY": "2", "WORKER_MAX_ATTEMPTS": "3"},
	},
}

func binaryByName(name string) *binary {
	for i := range binaries {
		if binaries[i].name == name {
			return &binaries[i]
		}
	}
	return nil
}

// imageBinary returns the binary an image runs, from the last element of its
// name, or nil for other images.
func imageBinary(image string) *binary {
	name := image[strings.LastIndex(image, "/")+1:]
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	return binaryByName(name)
}

// sourceFacts is what the tests read from a binary's sources.
type sourceFacts struct {
	env      map[string]bool   // environment variables the config package reads
	defaults map[string]string // defaults found for them, where recognisable
	paths    map[string]bool   // every path in a string literal of the module: "/x" or "GET /x"
}

var (
	factsOnce sync.Map // binary name -> func() (*sourceFacts, error)
)

// facts reads (once) what the sources of b say.
func facts(t *testing.T, b *binary) *sourceFacts {
	t.Helper()
	f, _ := factsOnce.LoadOrStore(b.name, sync.OnceValues(func() (*sourceFacts, error) { return readFacts(b) }))
	sf, err := f.(func() (*sourceFacts, error))()
	if err != nil {
		t.Fatalf("%s: %v", b.name, err)
	}
	return sf
}

var (
	envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)
	// routeRE matches a path as gin ("/healthz") or net/http ("GET /healthz")
	// registers it.
	routeRE = regexp.MustCompile(`^(?:[A-Z]+ +)?(/[^ ]*)$`)
)

func readFacts(b *binary) (*sourceFacts, error) {
	sf := &sourceFacts{env: map[string]bool{}, defaults: map[string]string{}, paths: map[string]bool{}}
	cfgFiles, err := goFiles(filepath.Join(repoRoot, b.configDir))
	if err != nil {
		return nil, fmt.Errorf("reading the configuration package %s: %w", b.configDir, err)
	}
	if len(cfgFiles) == 0 {
		return nil, fmt.Errorf("no Go files in %s, where the binary's configuration is expected", b.configDir)
	}
	var parsed []*ast.File
	consts := map[string]string{} // string constants of the package, for defaults
	for _, file := range cfgFiles {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							consts[id.Name] = s
						}
					}
				}
			}
			return true
		})
	}
	value := func(e ast.Expr) (string, bool) {
		if s, ok := stringLit(e); ok {
			return s, true
		}
		if id, ok := e.(*ast.Ident); ok {
			s, ok := consts[id.Name]
			return s, ok
		}
		return "", false
	}
	for _, f := range parsed {
		// Names passed to getenv-like calls, and every literal shaped like an
		// environment variable (helpers such as duration("TASK_TTL", ...)).
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && envNameRE.MatchString(s) {
					sf.env[s] = true
				}
			case *ast.CallExpr:
				if isGetenv(n.Fun) && len(n.Args) == 1 {
					if s, ok := stringLit(n.Args[0]); ok {
						sf.env[s] = true
					}
				}
				// or(getenv("X"), "default") and envOr("X", Default), the default a
				// literal or a constant of the package.
				name, def := "", ""
				for _, a := range n.Args {
					if s, ok := value(a); ok {
						if envNameRE.MatchString(s) && name == "" {
							name = s
						} else {
							def = s
						}
					} else if c, ok := a.(*ast.CallExpr); ok && isGetenv(c.Fun) && len(c.Args) == 1 {
						name, _ = stringLit(c.Args[0])
					}
				}
				if name != "" && def != "" && len(n.Args) == 2 {
					sf.defaults[name] = def
				}
			}
			return true
		})
	}
	modFiles, err := goFiles(filepath.Join(repoRoot, b.module))
	if err != nil {
		return nil, err
	}
	for _, file := range modFiles {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if l, ok := n.(*ast.BasicLit); ok {
				if s, ok := stringLit(l); ok {
					if m := routeRE.FindStringSubmatch(s); m != nil {
						sf.paths[m[1]] = true
					}
				}
			}
			return true
		})
	}
	return sf, nil
}

func isGetenv(fun ast.Expr) bool {
	var name string
	switch f := fun.(type) {
	case *ast.Ident:
		name = f.Name
	case *ast.SelectorExpr:
		name = f.Sel.Name
	}
	return name == "getenv" || name == "Getenv" || name == "LookupEnv" || name == "lookupEnv"
}

func stringLit(e ast.Expr) (string, bool) {
	l, ok := e.(*ast.BasicLit)
	if !ok || l.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(l.Value)
	return s, err == nil
}

// goFiles lists the non-test Go files under dir, recursively.
func goFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// TestBinariesMatchTheirSources checks the table above against the binaries'
// sources: the variables it names are read, its defaults are the sources'
// defaults (where recognisable), and its probe paths exist as literals.
func TestBinariesMatchTheirSources(t *testing.T) {
	for _, b := range binaries {
		t.Run(b.name, func(t *testing.T) {
			sf := facts(t, &b)
			names := []string{b.addrEnv, b.shutdownEnv}
			names = append(names, b.required...)
			for k := range b.defaults {
				names = append(names, k)
			}
			for _, n := range names {
				if !sf.env[n] {
					t.Errorf("%s does not read %s (it reads %v): update the table and the manifests", b.configDir, n, sortedKeys(sf.env))
				}
			}
			if d, ok := sf.defaults[b.addrEnv]; ok && d != b.defaultAddr {
				t.Errorf("%s defaults to %q in %s, the table says %q", b.addrEnv, d, b.configDir, b.defaultAddr)
			}
			for k, want := range b.defaults {
				if d, ok := sf.defaults[k]; ok && want != "" && d != want {
					t.Errorf("%s defaults to %q in %s, the table says %q", k, d, b.configDir, want)
				}
			}
			for _, p := range []string{b.liveness, b.readiness} {
				if !sf.paths[p] {
					t.Errorf("no string %q in the sources of %s: the probe path is not served", p, b.module)
				}
			}
		})
	}
}

// queueContract is the task queue as the shared store defines it.
type queueContract struct {
	queueSuffix string // the key is TASKWIRE_PREFIX + queueSuffix
	group       string // the consumer group of the workers
}

// readQueueContract reads the queue's key and consumer group from
// shared/store, where server and worker take them from.
func readQueueContract(t *testing.T) queueContract {
	t.Helper()
	file := filepath.Join(repoRoot, "shared", "store", "store.go")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatalf("reading the queue contract: %v", err)
	}
	var c queueContract
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ValueSpec:
			for i, id := range n.Names {
				if id.Name == "QueueGroup" && i < len(n.Values) {
					c.group, _ = stringLit(n.Values[i])
				}
			}
		case *ast.FuncDecl:
			// func (k Keys) Queue() string { return k.Prefix + ":queue" }
			if n.Recv != nil && n.Name.Name == "Queue" && n.Body != nil {
				ast.Inspect(n.Body, func(m ast.Node) bool {
					if be, ok := m.(*ast.BinaryExpr); ok && be.Op == token.ADD {
						if s, ok := stringLit(be.Y); ok {
							c.queueSuffix = s
						}
					}
					return true
				})
			}
		}
		return true
	})
	if c.group == "" || c.queueSuffix == "" {
		t.Fatalf("%s: could not find const QueueGroup and Keys.Queue's suffix (got %+v); update readQueueContract", file, c)
	}
	return c
}

// checkValue checks that value has the form the binaries accept for name.
func checkValue(name, value string) error {
	switch {
	case strings.HasSuffix(name, "_ADDR"):
		if _, _, err := net.SplitHostPort(value); err != nil {
			return fmt.Errorf("%q is not host:port", value)
		}
	case strings.HasSuffix(name, "_TIMEOUT") || strings.HasSuffix(name, "_TTL") || strings.HasSuffix(name, "_DELAY"):
		if d, err := time.ParseDuration(value); err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration (for example 30s)", value)
		}
	case name == "WORKER_CONCURRENCY" || strings.HasSuffix(name, "_MAX_ATTEMPTS") || name == "MAX_BODY_BYTES":
		if n, err := strconv.Atoi(value); err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", value)
		}
	case name == "RESULT_MAX_BYTES":
		if !sizeRE.MatchString(value) {
			return fmt.Errorf("%q is not a size (bytes, or a number with KB, MB, GB, KiB, MiB or GiB)", value)
		}
	case name == "PROGRESS_MAX_RATE":
		if f, err := strconv.ParseFloat(value, 64); err != nil || f < 0 {
			return fmt.Errorf("%q is not a number of events per second (0 = no limit)", value)
		}
	case name == "LOG_LEVEL":
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(value)) {
			return fmt.Errorf("%q is not debug, info, warn or error", value)
		}
	case name == "REDIS_URL":
		u, err := url.Parse(value)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return fmt.Errorf("%q is not a redis:// or rediss:// URL", value)
		}
	case name == "TASKWIRE_SECRET" || name == "TASKWIRE_JWT_SECRET":
		if len(value) < 32 {
			return fmt.Errorf("is %d bytes, at least 32 are needed", len(value))
		}
	case name == "ANONYMOUS_SESSIONS":
		if _, err := strconv.ParseBool(value); err != nil {
			return fmt.Errorf("%q is not true or false", value)
		}
	case name == "TASKWIRE_JWKS_URL":
		u, err := url.Parse(value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http:// or https:// URL", value)
		}
	case name == "TASKWIRE_API_KEYS":
		for _, entry := range strings.Split(value, ",") {
			if !apiKeyRE.MatchString(strings.TrimSpace(entry)) {
				return fmt.Errorf("an entry is not name:<64 lowercase hex digits> (the SHA-256 of the key, as taskwire-server apikey new prints it)")
			}
		}
	}
	return nil
}

var sizeRE = regexp.MustCompile(`(?i)^[0-9]+ *(b|kb|mb|gb|kib|mib|gib)?$`)

var apiKeyRE = regexp.MustCompile(`^[^:,\s]+:[0-9a-f]{64}$`)

// port returns the port of a listen address.
func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// readFile reads a file of this package or the repository.
func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
