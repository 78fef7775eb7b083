package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Socket.IO's default heartbeat (pingInterval 25 s + pingTimeout 20 s): a proxy
// must keep an idle connection, or a long-poll, open longer than this.
const socketIOHeartbeat = 45 * time.Second

// shutdownMargin is the time a pod needs beyond its graceful shutdown timeout
// to exit before SIGKILL.
const shutdownMargin = 5 * time.Second

// TestManifests renders every kustomization and checks what the cluster and the
// binaries will see.
func TestManifests(t *testing.T) {
	mem := loadTree(t)
	contract := readQueueContract(t)
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			r := render(t, mem, k)
			if len(r.deployments()) == 0 {
				t.Fatal("no Deployments rendered")
			}
			seen := map[string]bool{}
			for _, d := range r.deployments() {
				checkPodSecurity(t, r, d)
				for i := range d.Spec.Template.Spec.Containers {
					c := &d.Spec.Template.Spec.Containers[i]
					if b := imageBinary(c.Image); b != nil {
						seen[b.name] = true
						checkTaskwireContainer(t, r, d, c, b)
					}
				}
			}
			for _, b := range binaries {
				if !seen[b.name] {
					t.Errorf("no Deployment runs %s", b.name)
				}
			}
			checkAgreement(t, r)
			checkServices(t, r)
			checkIngresses(t, r)
			checkPDBs(t, r)
			checkScaledObjects(t, r, contract)
			checkImages(t, r, k.dir == "base")
			if k.production {
				checkProductionIdentities(t, r)
			}
		})
	}
}

// checkPodSecurity checks the hardening every pod must have.
func checkPodSecurity(t *testing.T, r *rendering, d *appsv1.Deployment) {
	id := r.name + " Deployment/" + d.Name
	ps := d.Spec.Template.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false (nothing here talks to the API server)", id)
	}
	psc := ps.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", id)
	}
	if len(ps.InitContainers) > 0 {
		t.Errorf("%s: init containers are not checked here; extend the test", id)
	}
	for _, c := range ps.Containers {
		cid := id + " container " + c.Name
		sc := c.SecurityContext
		nonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		if sc != nil && sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if !nonRoot {
			t.Errorf("%s: runAsNonRoot must be true", cid)
		}
		uid := int64(-1)
		if psc != nil && psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if sc != nil && sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if uid <= 0 {
			t.Errorf("%s: runAsUser must be a non-zero uid (scratch images have no user names)", cid)
		}
		if sc == nil {
			t.Errorf("%s: no securityContext", cid)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", cid)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", cid)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", cid)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", cid)
		}
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
			t.Errorf("%s: needs cpu and memory requests and a memory limit", cid)
		} else if lim.Memory().Cmp(*req.Memory()) < 0 {
			t.Errorf("%s: memory limit below its request", cid)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: needs liveness and readiness probes", cid)
		}
	}
}

// checkTaskwireContainer checks a container running one of taskwire's binaries
// against what that binary reads and serves.
func checkTaskwireContainer(t *testing.T, r *rendering, d *appsv1.Deployment, c *corev1.Container, b *binary) {
	id := r.name + " Deployment/" + d.Name + " container " + c.Name
	if c.Name != b.name {
		t.Errorf("%s: runs %s; name the container after it", id, b.name)
	}
	sf := facts(t, b)
	env := resolveEnv(t, r, c, id)
	checkSecretSources(t, r, c, id)
	checkMemoryLimit(t, c, id)

	// Every variable is one the binary reads, in a form it accepts.
	for _, n := range sortedKeys(env.names) {
		if !sf.env[n] {
			t.Errorf("%s: sets %s, which %s does not read (it reads %v)", id, n, b.name, sortedKeys(sf.env))
		}
		if v, ok := env.values[n]; ok {
			if err := checkValue(n, v); err != nil {
				t.Errorf("%s: %s: %v", id, n, err)
			}
		}
	}
	for _, n := range b.required {
		if !env.names[n] {
			t.Errorf("%s: %s is not set", id, n)
		}
	}

	// The probes reach the binary's health paths, on the port it listens on.
	addr := env.effective(b, b.addrEnv)
	want, err := port(addr)
	if err != nil {
		t.Errorf("%s: %s=%q: %v", id, b.addrEnv, addr, err)
		return
	}
	declared := false
	for _, p := range c.Ports {
		if int(p.ContainerPort) == want {
			declared = true
		}
	}
	if !declared {
		t.Errorf("%s: listens on %d (%s=%s) but declares no such containerPort", id, want, b.addrEnv, addr)
	}
	probes := []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, b.liveness},
		{"livenessProbe", c.LivenessProbe, b.liveness},
		{"readinessProbe", c.ReadinessProbe, b.readiness},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: %s must be an httpGet on %s", id, p.kind, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s: %s path %q, want %q", id, p.kind, g.Path, p.path)
		}
		if got := resolvePort(c, g.Port); got != want {
			t.Errorf("%s: %s port %s is %d, but %s listens on %d (%s=%s)", id, p.kind, g.Port.String(), got, b.name, want, b.addrEnv, addr)
		}
	}
	if p, ok := d.Spec.Template.Annotations["prometheus.io/port"]; ok && p != strconv.Itoa(want) {
		t.Errorf("%s: prometheus.io/port %s, but metrics are served on %d", id, p, want)
	}

	// The pod is given the time to shut down gracefully.
	shutdown := b.defaultShutdown
	if v, ok := env.values[b.shutdownEnv]; ok {
		shutdown, _ = time.ParseDuration(v)
	} else if env.names[b.shutdownEnv] {
		t.Errorf("%s: %s comes from a Secret created outside; its value cannot be checked", id, b.shutdownEnv)
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil {
			t.Errorf("%s: preStop must be a sleep action (the image has no shell)", id)
		} else {
			preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
	}
	grace := 30 * time.Second // the Kubernetes default
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := preStop + shutdown + shutdownMargin; grace < need {
		t.Errorf("%s: terminationGracePeriodSeconds %v < preStop %v + %s %v + %v: the pod would be killed mid-shutdown", id, grace, preStop, b.shutdownEnv, shutdown, shutdownMargin)
	}
	if b.name == "taskwire-server" && preStop < 5*time.Second {
		t.Errorf("%s: preStop sleep %v: the Ingress must stop sending requests before the server drains (5 s at least)", id, preStop)
	}
}

// containerEnv is the environment of one container as far as the rendering
// tells it.
type containerEnv struct {
	names  map[string]bool   // every variable set
	values map[string]string // the values known (not in an external Secret)
}

// effective returns the value the binary sees for name: the one set, or the
// binary's default.
func (e *containerEnv) effective(b *binary, name string) string {
	if v, ok := e.values[name]; ok {
		return v
	}
	if name == b.addrEnv {
		return b.defaultAddr
	}
	return b.defaults[name]
}

// resolveEnv collects the environment of c, following envFrom and valueFrom to
// the rendered ConfigMaps and Secrets; a reference to anything missing fails.
func resolveEnv(t *testing.T, r *rendering, c *corev1.Container, id string) *containerEnv {
	e := &containerEnv{names: map[string]bool{}, values: map[string]string{}}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := r.configMap(from.ConfigMapRef.Name)
			if cm == nil {
				t.Errorf("%s: envFrom ConfigMap %q is not rendered", id, from.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				e.names[from.Prefix+k], e.values[from.Prefix+k] = true, v
			}
		case from.SecretRef != nil:
			s := r.secret(from.SecretRef.Name)
			if s == nil {
				t.Errorf("%s: envFrom Secret %q is not rendered (for a Secret made outside, use secretKeyRef so the names stay checkable)", id, from.SecretRef.Name)
				continue
			}
			for k, v := range s.Data {
				e.names[from.Prefix+k], e.values[from.Prefix+k] = true, string(v)
			}
		}
	}
	for _, v := range c.Env {
		e.names[v.Name] = true
		delete(e.values, v.Name)
		switch {
		case v.ValueFrom == nil:
			e.values[v.Name] = v.Value
		case v.ValueFrom.ConfigMapKeyRef != nil:
			ref := v.ValueFrom.ConfigMapKeyRef
			cm := r.configMap(ref.Name)
			if cm == nil {
				t.Errorf("%s: %s: ConfigMap %q is not rendered", id, v.Name, ref.Name)
			} else if val, ok := cm.Data[ref.Key]; !ok {
				t.Errorf("%s: %s: ConfigMap %s has no key %q", id, v.Name, ref.Name, ref.Key)
			} else {
				e.values[v.Name] = val
			}
		case v.ValueFrom.SecretKeyRef != nil:
			ref := v.ValueFrom.SecretKeyRef
			s := r.secret(ref.Name)
			switch {
			case s != nil:
				if val, ok := s.Data[ref.Key]; ok {
					e.values[v.Name] = string(val)
				} else if val, ok := s.StringData[ref.Key]; ok {
					e.values[v.Name] = val
				} else {
					t.Errorf("%s: %s: Secret %s has no key %q", id, v.Name, ref.Name, ref.Key)
				}
			case !r.external[ref.Name]:
				t.Errorf("%s: %s: Secret %q is neither rendered nor expected beside the overlay", id, v.Name, ref.Name)
			}
		}
	}
	return e
}

// resolvePort returns the number a probe or Service port means in c.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func containerOf(d *appsv1.Deployment, name string) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// checkAgreement checks settings that server and worker must share.
func checkAgreement(t *testing.T, r *rendering) {
	server, worker := binaryByName("taskwire-server"), binaryByName("taskwire-worker")
	var senv, wenv *containerEnv
	for _, d := range r.deployments() {
		if c := containerOf(d, server.name); c != nil {
			senv = resolveEnv(t, r, c, d.Name)
		}
		if c := containerOf(d, worker.name); c != nil {
			wenv = resolveEnv(t, r, c, d.Name)
		}
	}
	if senv == nil || wenv == nil {
		return
	}
	pairs := [][2]string{
		{"SOCKETIO_KEY", "SOCKETIO_KEY"},       // the worker's events reach the servers' adapter
		{"TASKWIRE_PREFIX", "TASKWIRE_PREFIX"}, // both use the same Redis keys
		{"TASK_TTL", "TASK_TTL"},               // records and results live as long for both
		{"TASK_MAX_ATTEMPTS", "WORKER_MAX_ATTEMPTS"},
	}
	for _, p := range pairs {
		if s, w := senv.effective(server, p[0]), wenv.effective(worker, p[1]); s != w {
			t.Errorf("%s: server %s=%q but worker %s=%q: they must agree", r.name, p[0], s, p[1], w)
		}
	}
	su, sok := senv.values["REDIS_URL"]
	wu, wok := wenv.values["REDIS_URL"]
	if sok && wok && su != wu {
		t.Errorf("%s: server and worker use different REDIS_URLs", r.name)
	}
}

// podsSelectedBy returns the Deployments whose pods match sel.
func podsSelectedBy(r *rendering, sel labels.Selector) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range r.deployments() {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func checkServices(t *testing.T, r *rendering) {
	for _, s := range r.services() {
		id := r.name + " Service/" + s.Name
		if len(s.Spec.Selector) == 0 {
			t.Errorf("%s: no selector", id)
			continue
		}
		ds := podsSelectedBy(r, labels.SelectorFromSet(s.Spec.Selector))
		if len(ds) != 1 {
			t.Errorf("%s: selects the pods of %d Deployments, want 1", id, len(ds))
			continue
		}
		d := ds[0]
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: Deployment %s's selector does not match its own pods", id, d.Name)
		}
		for _, p := range s.Spec.Ports {
			found := false
			for _, c := range d.Spec.Template.Spec.Containers {
				if resolvePort(&c, p.TargetPort) > 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: port %s targets %s, which no container of %s declares", id, p.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
}

func checkIngresses(t *testing.T, r *rendering) {
	for _, ing := range r.ingresses() {
		id := r.name + " Ingress/" + ing.Name
		a := ing.Annotations
		if a["nginx.ingress.kubernetes.io/affinity"] != "cookie" {
			t.Errorf("%s: Socket.IO long-polling needs cookie affinity", id)
		}
		for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
			v, err := strconv.Atoi(a["nginx.ingress.kubernetes.io/"+k])
			if err != nil || time.Duration(v)*time.Second <= socketIOHeartbeat {
				t.Errorf("%s: %s %q must be more seconds than the Socket.IO heartbeat (%v)", id, k, a["nginx.ingress.kubernetes.io/"+k], socketIOHeartbeat)
			}
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				svc := p.Backend.Service
				if svc == nil {
					t.Errorf("%s: path %s has no Service backend", id, p.Path)
					continue
				}
				s := r.service(svc.Name)
				if s == nil {
					t.Errorf("%s: backend Service %q is not rendered", id, svc.Name)
					continue
				}
				ok := false
				for _, sp := range s.Spec.Ports {
					if (svc.Port.Name != "" && sp.Name == svc.Port.Name) || (svc.Port.Number != 0 && sp.Port == svc.Port.Number) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s: backend port %+v is not a port of Service %s", id, svc.Port, s.Name)
				}
			}
		}
	}
}

func checkPDBs(t *testing.T, r *rendering) {
	covered := map[string]bool{}
	for _, p := range r.pdbs() {
		id := r.name + " PodDisruptionBudget/" + p.Name
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("%s: bad or empty selector", id)
			continue
		}
		ds := podsSelectedBy(r, sel)
		if len(ds) != 1 {
			t.Errorf("%s: selects the pods of %d Deployments, want 1", id, len(ds))
		}
		for _, d := range ds {
			covered[d.Name] = true
		}
	}
	for _, d := range r.deployments() {
		if imageBinary(d.Spec.Template.Spec.Containers[0].Image) != nil && !covered[d.Name] {
			t.Errorf("%s Deployment/%s: no PodDisruptionBudget", r.name, d.Name)
		}
	}
}

// checkImages checks that overlays give the images a tag.
func checkImages(t *testing.T, r *rendering, base bool) {
	for _, d := range r.deployments() {
		for _, c := range d.Spec.Template.Spec.Containers {
			name := c.Image[strings.LastIndex(c.Image, "/")+1:]
			tagged := strings.ContainsAny(name, ":@")
			if base && imageBinary(c.Image) != nil {
				if tagged || strings.Contains(c.Image, "/") {
					t.Errorf("%s: base image %q should be the bare placeholder %s, mapped by overlays' images:", r.name, c.Image, name)
				}
				continue
			}
			if !tagged || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s Deployment/%s: image %q needs a tag other than latest", r.name, d.Name, c.Image)
			}
		}
	}
}

// TestEveryComponentIsRendered makes sure no component escapes the checks.
func TestEveryComponentIsRendered(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(k8sDir, "components"))
	if err != nil {
		t.Fatal(err)
	}
	var uses string
	for _, k := range kustomizations {
		if k.combo != "" {
			uses += k.combo
			continue
		}
		b, err := os.ReadFile(filepath.Join(k8sDir, k.dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		uses += string(b)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.Contains(uses, "components/"+e.Name()) {
			t.Errorf("component %s is used by no kustomization the tests render", e.Name())
		}
	}
}
