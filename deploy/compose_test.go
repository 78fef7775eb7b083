package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose specification that compose.yaml uses.
// Services are decoded strictly: a field not listed here fails (a typo, or a new
// field to add here after checking the specification).
type composeService struct {
	Image string `json:"image,omitempty"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
		Target     string `json:"target"`
	} `json:"build,omitempty"`
	Command     []string          `json:"command,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval,omitempty"`
		Timeout  string   `json:"timeout,omitempty"`
		Retries  int      `json:"retries,omitempty"`
	} `json:"healthcheck,omitempty"`
	Restart         string          `json:"restart,omitempty"`
	ReadOnly        bool            `json:"read_only,omitempty"`
	Tmpfs           []string        `json:"tmpfs,omitempty"`
	CapDrop         []string        `json:"cap_drop,omitempty"`
	SecurityOpt     []string        `json:"security_opt,omitempty"`
	StopGracePeriod string          `json:"stop_grace_period,omitempty"`
	DependsOn       json.RawMessage `json:"depends_on,omitempty"`
	Deploy          *struct {
		Replicas int `json:"replicas"`
	} `json:"deploy,omitempty"`
	Ports []string `json:"ports,omitempty"`
}

func loadCompose(t *testing.T) map[string]*composeService {
	t.Helper()
	j, err := yaml.YAMLToJSON(readFile(t, "compose.yaml"))
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil {
		t.Fatal(err)
	}
	for k := range top {
		if k != "name" && k != "services" && !strings.HasPrefix(k, "x-") {
			t.Errorf("compose.yaml: unexpected top-level key %q", k)
		}
	}
	var services map[string]*composeService
	if err := strictUnmarshal(top["services"], &services); err != nil {
		t.Fatalf("compose.yaml services: %v", err)
	}
	return services
}

// dependsOn returns the services s waits for, from either form of depends_on.
func (s *composeService) dependsOn(t *testing.T) []string {
	if len(s.DependsOn) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(s.DependsOn, &list) == nil {
		return list
	}
	var m map[string]struct {
		Condition string `json:"condition"`
	}
	if err := strictUnmarshal(s.DependsOn, &m); err != nil {
		t.Errorf("depends_on: %v", err)
	}
	return sortedKeys(m)
}

// TestCompose checks compose.yaml against the binaries and the Dockerfile.
func TestCompose(t *testing.T) {
	services := loadCompose(t)
	stages := dockerStages(t)
	proxyEnv := proxyEnvNames(t)

	byBinary := map[string][]string{}
	for _, name := range sortedKeys(services) {
		s := services[name]
		id := "compose.yaml service " + name
		for _, dep := range s.dependsOn(t) {
			if services[dep] == nil {
				t.Errorf("%s: depends on unknown service %q", id, dep)
			}
		}
		if s.Build == nil {
			continue // third-party image
		}
		if got := filepath.Clean(filepath.Join(s.Build.Context, s.Build.Dockerfile)); got != filepath.Clean("../deploy/docker/Dockerfile") {
			t.Errorf("%s: builds %s from context %s; want the repository root and deploy/docker/Dockerfile", id, s.Build.Dockerfile, s.Build.Context)
		}
		st := stages[s.Build.Target]
		if st == nil {
			t.Errorf("%s: target %q is not a stage of the Dockerfile", id, s.Build.Target)
			continue
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: want read_only, cap_drop ALL and no-new-privileges", id)
		}
		if s.Healthcheck != nil {
			t.Errorf("%s: the image has no shell or client for a healthcheck", id)
		}
		if s.Build.Target == "proxy" {
			for k := range s.Environment {
				if !proxyEnv[k] {
					t.Errorf("%s: sets %s, which taskwire-proxy does not read (it reads %v)", id, k, sortedKeys(proxyEnv))
				}
			}
			checkComposeProxy(t, services, s)
			continue
		}
		b := binaryByName(st.binary)
		if b == nil {
			t.Errorf("%s: target %s runs %q, which is not in the binaries table", id, s.Build.Target, st.binary)
			continue
		}
		byBinary[b.name] = append(byBinary[b.name], name)
		sf := facts(t, b)
		env := &containerEnv{names: map[string]bool{}, values: s.Environment}
		for k, v := range s.Environment {
			env.names[k] = true
			if !sf.env[k] {
				t.Errorf("%s: sets %s, which %s does not read", id, k, b.name)
			}
			if !strings.Contains(v, "${") {
				if err := checkValue(k, v); err != nil {
					t.Errorf("%s: %s: %v", id, k, err)
				}
			}
		}
		for _, n := range b.required {
			if !env.names[n] {
				t.Errorf("%s: %s is not set", id, n)
			}
		}
		addr := env.effective(b, b.addrEnv)
		if p, err := port(addr); err != nil || !slices.Contains(st.expose, p) {
			t.Errorf("%s: listens on %s=%s but the image exposes %v", id, b.addrEnv, addr, st.expose)
		}
		shutdown := b.defaultShutdown
		if v, ok := env.values[b.shutdownEnv]; ok {
			shutdown, _ = time.ParseDuration(v)
		}
		grace := 10 * time.Second // Compose's default
		if s.StopGracePeriod != "" {
			grace, _ = time.ParseDuration(s.StopGracePeriod)
		}
		if grace < shutdown+shutdownMargin {
			t.Errorf("%s: stop_grace_period %v < %s %v + %v", id, grace, b.shutdownEnv, shutdown, shutdownMargin)
		}
	}
	if len(byBinary["taskwire-server"]) < 2 {
		t.Errorf("compose.yaml runs %d server services; want 2 behind the proxy", len(byBinary["taskwire-server"]))
	}

	// Settings that must agree across every taskwire service.
	for _, k := range []string{"REDIS_URL", "SOCKETIO_KEY", "TASKWIRE_PREFIX", "TASK_TTL", "TASKWIRE_SECRET"} {
		vals := map[string][]string{}
		for _, names := range byBinary {
			for _, n := range names {
				if v, ok := services[n].Environment[k]; ok {
					vals[v] = append(vals[v], n)
				}
			}
		}
		if len(vals) > 1 {
			t.Errorf("compose.yaml: %s differs between services: %v", k, vals)
		}
	}
	for _, s := range byBinary["taskwire-server"] {
		for _, w := range byBinary["taskwire-worker"] {
			if a, b := services[s].Environment["TASK_MAX_ATTEMPTS"], services[w].Environment["WORKER_MAX_ATTEMPTS"]; a != b {
				t.Errorf("compose.yaml: %s TASK_MAX_ATTEMPTS=%q but %s WORKER_MAX_ATTEMPTS=%q", s, a, w, b)
			}
		}
	}
}

// checkComposeProxy checks that the proxy sends clients to every server service,
// on the port it listens on.
func checkComposeProxy(t *testing.T, services map[string]*composeService, proxy *composeService) {
	server := binaryByName("taskwire-server")
	want := map[string]bool{}
	for name, s := range services {
		if s.Build != nil && s.Build.Target == "server" {
			addr := s.Environment[server.addrEnv]
			if addr == "" {
				addr = server.defaultAddr
			}
			p, _ := port(addr)
			want[fmt.Sprintf("%s:%d", name, p)] = true
		}
	}
	got := map[string]bool{}
	for _, b := range strings.Split(proxy.Environment["TASKWIRE_PROXY_BACKENDS"], ",") {
		u, err := url.Parse(strings.TrimSpace(b))
		if err != nil || u.Host == "" {
			t.Errorf("compose.yaml proxy: backend %q is not a URL", b)
			continue
		}
		got[u.Host] = true
	}
	if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want)) {
		t.Errorf("compose.yaml proxy: backends %v, want the server services %v", sortedKeys(got), sortedKeys(want))
	}
	if len(proxy.Ports) != 1 || !strings.HasSuffix(proxy.Ports[0], ":"+strings.TrimPrefix(proxy.Environment["TASKWIRE_PROXY_ADDR"], ":")) {
		t.Errorf("compose.yaml proxy: publishes %v but listens on %q", proxy.Ports, proxy.Environment["TASKWIRE_PROXY_ADDR"])
	}
}

// proxyEnvNames returns the environment variables taskwire-proxy reads.
func proxyEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	sf, err := readFacts(&binary{name: "taskwire-proxy", module: "devtools/cmd/taskwire-proxy", configDir: "devtools/cmd/taskwire-proxy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sf.env) == 0 {
		t.Fatal("found no environment variables read by taskwire-proxy")
	}
	return sf.env
}
