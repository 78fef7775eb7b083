package deploy

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// secretVars are the variables that hold secrets: they must come from a
// Secret, never from a ConfigMap or a literal in a manifest, which anyone who
// can read the namespace's configuration (or this repository) would see.
var secretVars = []string{"TASKWIRE_SECRET", "TASKWIRE_JWT_SECRET", "TASKWIRE_API_KEYS", "REDIS_URL"}

// checkSecretSources fails for a secret variable of c set from a ConfigMap or
// as a literal value.
func checkSecretSources(t *testing.T, r *rendering, c *corev1.Container, id string) {
	t.Helper()
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if cm := r.configMap(from.ConfigMapRef.Name); cm != nil {
			for _, n := range secretVars {
				if _, ok := cm.Data[from.Prefix+n]; ok {
					t.Errorf("%s: %s comes from ConfigMap %s; a secret belongs in a Secret", id, n, cm.Name)
				}
			}
		}
	}
	for _, v := range c.Env {
		if !slices.Contains(secretVars, v.Name) {
			continue
		}
		if v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s: %s is set from a literal or a ConfigMap; a secret belongs in a Secret (secretKeyRef)", id, v.Name)
		}
	}
}

// checkMemoryLimit requires a memory limit on c and GOMEMLIMIT taken from it,
// so that the Go runtime collects harder near the limit instead of growing
// past it into an OOM kill.
func checkMemoryLimit(t *testing.T, c *corev1.Container, id string) {
	t.Helper()
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("%s: no memory limit", id)
	}
	for _, v := range c.Env {
		if v.Name != "GOMEMLIMIT" {
			continue
		}
		f := v.ValueFrom
		if f == nil || f.ResourceFieldRef == nil || f.ResourceFieldRef.Resource != "limits.memory" ||
			(f.ResourceFieldRef.ContainerName != "" && f.ResourceFieldRef.ContainerName != c.Name) {
			t.Errorf("%s: GOMEMLIMIT must come from this container's limits.memory (resourceFieldRef)", id)
		}
		return
	}
	t.Errorf("%s: GOMEMLIMIT is not set (from resourceFieldRef limits.memory)", id)
}

// checkProductionIdentities requires a production setup to accept only the
// app's own tokens: ANONYMOUS_SESSIONS=false, and at least one way to verify
// a token (the app's JWT secret or JWKS, or the backends' API keys).
func checkProductionIdentities(t *testing.T, r *rendering) {
	t.Helper()
	server := binaryByName("taskwire-server")
	found := false
	for _, d := range r.deployments() {
		c := containerOf(d, server.name)
		if c == nil {
			continue
		}
		found = true
		id := r.name + " Deployment/" + d.Name
		env := resolveEnv(t, r, c, id)
		if v := env.effective(server, "ANONYMOUS_SESSIONS"); v != "false" {
			t.Errorf("%s: ANONYMOUS_SESSIONS=%q; production accepts only the app's tokens (false)", id, v)
		}
		verifiers := 0
		for _, n := range []string{"TASKWIRE_JWT_SECRET", "TASKWIRE_JWKS_URL", "TASKWIRE_API_KEYS"} {
			if env.names[n] {
				verifiers++
			}
		}
		if verifiers == 0 {
			t.Errorf("%s: ANONYMOUS_SESSIONS is false but none of TASKWIRE_JWT_SECRET, TASKWIRE_JWKS_URL, TASKWIRE_API_KEYS is set: the server would refuse to start", id)
		}
	}
	if !found {
		t.Errorf("%s: no taskwire-server Deployment", r.name)
	}
}
