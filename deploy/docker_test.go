package deploy

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerStage is what the tests read of one stage of the Dockerfile.
type dockerStage struct {
	name, from string
	binary     string // the binary the stage's ENTRYPOINT runs, if any
	expose     []int
	user       string
	builds     []string // packages built with go build -o
	env        []string
}

// dockerStages parses deploy/docker/Dockerfile into its stages, by name.
func dockerStages(t *testing.T) map[string]*dockerStage {
	t.Helper()
	stages := map[string]*dockerStage{}
	var cur *dockerStage
	// Join continuation lines first.
	var lines []string
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "docker/Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			b.WriteString(s + " ")
			continue
		}
		b.WriteString(line)
		lines = append(lines, b.String())
		b.Reset()
	}
	fromRE := regexp.MustCompile(`^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$`)
	buildRE := regexp.MustCompile(`go build .*-o \S+ (\./\S+)`)
	for _, line := range lines {
		inst, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(inst) {
		case "FROM":
			m := fromRE.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("Dockerfile: cannot read %q", line)
			}
			cur = &dockerStage{name: m[2], from: m[1]}
			if parent := stages[m[1]]; parent != nil {
				cur.user, cur.expose = parent.user, slices.Clone(parent.expose)
				cur.env = slices.Clone(parent.env)
			}
			if cur.name != "" {
				stages[cur.name] = cur
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Errorf("Dockerfile: EXPOSE %q", p)
				}
				cur.expose = append(cur.expose, n)
			}
		case "USER":
			cur.user = rest
		case "ENV":
			cur.env = append(cur.env, rest)
		case "ENTRYPOINT":
			cur.binary = strings.Trim(filepath.Base(strings.Trim(rest, `[]" `)), `"`)
		case "RUN":
			if m := buildRE.FindStringSubmatch(rest); m != nil {
				cur.builds = append(cur.builds, m[1])
			}
		}
	}
	return stages
}

// TestDockerfile checks the images: one per binary, built static from the
// workspace, running as non-root on scratch, exposing the port the binary
// listens on by default.
func TestDockerfile(t *testing.T) {
	stages := dockerStages(t)
	build := stages["build"]
	if build == nil || !slices.ContainsFunc(build.env, func(e string) bool { return strings.Contains(e, "CGO_ENABLED=0") }) {
		t.Error("Dockerfile: the build stage must set CGO_ENABLED=0 (static binaries for scratch)")
	}
	targets := map[string]string{"server": "taskwire-server", "worker": "taskwire-worker", "proxy": "taskwire-proxy"}
	for target, bin := range targets {
		st := stages[target]
		if st == nil {
			t.Errorf("Dockerfile: no stage %q", target)
			continue
		}
		if st.binary != bin {
			t.Errorf("Dockerfile %s: ENTRYPOINT runs %q, want %s", target, st.binary, bin)
		}
		base := st
		for base != nil && base.from != "scratch" {
			base = stages[base.from]
		}
		if base == nil {
			t.Errorf("Dockerfile %s: does not end on scratch", target)
		}
		uid, _, _ := strings.Cut(st.user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("Dockerfile %s: USER %q, want a numeric non-root uid (scratch has no /etc/passwd)", target, st.user)
		}
		if b := binaryByName(bin); b != nil {
			p, _ := port(b.defaultAddr)
			if !slices.Contains(st.expose, p) {
				t.Errorf("Dockerfile %s: EXPOSE %v, but %s listens on %d by default", target, st.expose, bin, p)
			}
		}
		// The package the binary is built from exists.
		found := false
		for _, s := range stages {
			for _, pkg := range s.builds {
				if filepath.Base(pkg) == bin {
					found = true
					if _, err := os.Stat(filepath.Join(repoRoot, pkg, "main.go")); err != nil {
						t.Errorf("Dockerfile: builds %s, which has no main.go", pkg)
					}
				}
			}
		}
		if !found {
			t.Errorf("Dockerfile: no go build of %s", bin)
		}
	}

	// The ignore file must leave every module of the workspace in the context.
	var ignored []string
	for _, line := range strings.Split(string(readFile(t, "docker/Dockerfile.dockerignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignored = append(ignored, strings.TrimPrefix(line, "/"))
		}
	}
	work := string(readFile(t, filepath.Join(repoRoot, "go.work")))
	for _, m := range regexp.MustCompile(`(?m)^\s*\./(\S+)\s*$`).FindAllStringSubmatch(work, -1) {
		for _, pat := range ignored {
			if pat == m[1] || strings.HasPrefix(m[1]+"/", pat+"/") {
				t.Errorf("Dockerfile.dockerignore: %q drops the workspace module %s", pat, m[1])
			}
		}
	}
}
