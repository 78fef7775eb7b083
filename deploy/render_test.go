package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// rendering is the output of one kustomization, every object decoded.
type rendering struct {
	name    string
	objects []object
	// external names Secrets the kustomization expects to exist beside it.
	external map[string]bool
}

// object is one rendered object, decoded into its API type.
type object struct {
	kind, name string
	typed      any
}

// kustomization is one kustomization the tests render. combo, when set, is the
// content of a kustomization.yaml written (in memory) at dir, combining real
// parts the way a user could.
type kustomization struct {
	dir      string
	combo    string
	external []string
	// production marks a setup for real users: only the app's own tokens.
	production bool
}

// kustomizations lists what is rendered and checked: the base, every overlay, and
// combinations that exercise a component in another setting.
var kustomizations = []kustomization{
	{dir: "base", external: []string{"taskwire"}},
	{dir: "overlays/dev"},
	{dir: "overlays/production", external: []string{"taskwire"}, production: true},
	// KEDA on top of the dev overlay: the ScaledObject must find the in-cluster
	// Redis that REDIS_URL names.
	{dir: "tests/dev-keda", combo: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../overlays/dev]
components: [../../components/keda]
`},
	// KEDA beside a Secret generated in the same kustomization: its
	// TriggerAuthentication must follow the Secret's hashed name
	// (components/keda/kustomizeconfig.yaml).
	{dir: "tests/keda-generated-secret", combo: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../base]
components: [../../components/redis, ../../components/keda]
secretGenerator:
  - name: taskwire
    literals:
      - TASKWIRE_SECRET=test-only-secret-0123456789abcdef0123456789
      - REDIS_URL=redis://redis:6379/0
      - redis-password=
images:
  - {name: taskwire-server, newTag: test}
  - {name: taskwire-worker, newTag: test}
`},
}

// k8sDir is where the manifests are, relative to this package.
const k8sDir = "k8s"

// loadTree copies the k8s directory into an in-memory file system, so that the
// combinations can be added without files in the repository.
func loadTree(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(k8sDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+filepath.ToSlash(p), b)
	})
	if err != nil {
		t.Fatalf("reading %s: %v", k8sDir, err)
	}
	return mem
}

// scheme knows every built-in kind the manifests may use.
func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// render builds k with kustomize and decodes every object strictly: an unknown
// or duplicated field, a wrong type or an unknown kind fails the test.
func render(t *testing.T, mem filesys.FileSystem, k kustomization) *rendering {
	t.Helper()
	dir := "/" + path.Join(k8sDir, k.dir)
	if k.combo != "" {
		if err := mem.WriteFile(dir+"/kustomization.yaml", []byte(k.combo)); err != nil {
			t.Fatal(err)
		}
	}
	opts := krusty.MakeDefaultOptions()
	m, err := krusty.MakeKustomizer(opts).Run(mem, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k.dir, err)
	}
	sch := scheme(t)
	codec := json.NewSerializerWithOptions(json.DefaultMetaFactory, sch, sch, json.SerializerOptions{Strict: true})
	r := &rendering{name: k.dir, external: map[string]bool{}}
	for _, s := range k.external {
		r.external[s] = true
	}
	for _, res := range m.Resources() {
		raw, err := res.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("%s %s/%s", k.dir, res.GetKind(), res.GetName())
		var typed any
		switch res.GetApiVersion() {
		case "keda.sh/v1alpha1":
			typed, err = decodeKEDA(res.GetKind(), raw)
		default:
			var obj runtime.Object
			obj, _, err = codec.Decode(raw, nil, nil)
			typed = obj
		}
		if err != nil {
			t.Errorf("%s: strict decoding: %v", id, err)
			continue
		}
		r.objects = append(r.objects, object{kind: res.GetKind(), name: res.GetName(), typed: typed})
	}
	return r
}

// strictUnmarshal decodes JSON into v, failing on unknown or duplicated fields
// and on case-insensitive field matches, as the API server's strict mode does.
func strictUnmarshal(data []byte, v any) error {
	strictErrs, err := sigsjson.UnmarshalStrict(data, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		var msgs []string
		for _, e := range strictErrs {
			msgs = append(msgs, e.Error())
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// Typed accessors.

func (r *rendering) deployments() []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, o := range r.objects {
		if d, ok := o.typed.(*appsv1.Deployment); ok {
			out = append(out, d)
		}
	}
	return out
}

func (r *rendering) configMap(name string) *corev1.ConfigMap {
	for _, o := range r.objects {
		if c, ok := o.typed.(*corev1.ConfigMap); ok && c.Name == name {
			return c
		}
	}
	return nil
}

func (r *rendering) secret(name string) *corev1.Secret {
	for _, o := range r.objects {
		if s, ok := o.typed.(*corev1.Secret); ok && s.Name == name {
			return s
		}
	}
	return nil
}

func (r *rendering) services() []*corev1.Service {
	var out []*corev1.Service
	for _, o := range r.objects {
		if s, ok := o.typed.(*corev1.Service); ok {
			out = append(out, s)
		}
	}
	return out
}

func (r *rendering) service(name string) *corev1.Service {
	for _, s := range r.services() {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (r *rendering) ingresses() []*networkingv1.Ingress {
	var out []*networkingv1.Ingress
	for _, o := range r.objects {
		if i, ok := o.typed.(*networkingv1.Ingress); ok {
			out = append(out, i)
		}
	}
	return out
}

func (r *rendering) pdbs() []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, o := range r.objects {
		if p, ok := o.typed.(*policyv1.PodDisruptionBudget); ok {
			out = append(out, p)
		}
	}
	return out
}

func (r *rendering) scaledObjects() []*scaledObject {
	var out []*scaledObject
	for _, o := range r.objects {
		if s, ok := o.typed.(*scaledObject); ok {
			out = append(out, s)
		}
	}
	return out
}

func (r *rendering) triggerAuthentication(name string) *triggerAuthentication {
	for _, o := range r.objects {
		if a, ok := o.typed.(*triggerAuthentication); ok && a.Name == name {
			return a
		}
	}
	return nil
}

func (r *rendering) deployment(name string) *appsv1.Deployment {
	for _, d := range r.deployments() {
		if d.Name == name {
			return d
		}
	}
	return nil
}
