package deploy

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The KEDA kinds are not in k8s.io/api, and KEDA's own Go module would pull its
// whole dependency tree into the workspace. These mirror the fields of
// keda.sh/v1alpha1 (KEDA v2.21, apis/keda/v1alpha1/scaledobject_types.go and
// triggerauthentication_types.go) that a ScaledObject on Redis Streams uses;
// decoding into them strictly catches misspelt or misplaced fields. A manifest
// that needs another KEDA field adds it here, from KEDA's types.

type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef        *scaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32          `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32          `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32          `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32          `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32          `json:"maxReplicaCount,omitempty"`
	Advanced              *advancedConfig `json:"advanced,omitempty"`
	Triggers              []scaleTrigger  `json:"triggers"`
	Fallback              *fallback       `json:"fallback,omitempty"`
}

type scaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type advancedConfig struct {
	HorizontalPodAutoscalerConfig *struct {
		Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
		Name     string                                         `json:"name,omitempty"`
	} `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	ScalingModifiers              *struct {
		Formula          string `json:"formula,omitempty"`
		Target           string `json:"target,omitempty"`
		ActivationTarget string `json:"activationTarget,omitempty"`
		MetricType       string `json:"metricType,omitempty"`
	} `json:"scalingModifiers,omitempty"`
}

type scaleTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
	MetricType string `json:"metricType,omitempty"`
}

type fallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef    []authTargetRef `json:"secretTargetRef,omitempty"`
		ConfigMapTargetRef []authTargetRef `json:"configMapTargetRef,omitempty"`
		Env                []struct {
			Parameter     string `json:"parameter"`
			Name          string `json:"name"`
			ContainerName string `json:"containerName,omitempty"`
		} `json:"env,omitempty"`
	} `json:"spec"`
}

type authTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

func decodeKEDA(kind string, raw []byte) (any, error) {
	switch kind {
	case "ScaledObject":
		var s scaledObject
		return &s, strictUnmarshal(raw, &s)
	case "TriggerAuthentication":
		var a triggerAuthentication
		return &a, strictUnmarshal(raw, &a)
	}
	return nil, fmt.Errorf("unknown KEDA kind %s", kind)
}

// redisStreamsKeys are the trigger metadata keys KEDA's redis-streams scaler
// reads (KEDA v2.21, pkg/scalers/redis_streams_scaler.go and redis_scaler.go).
var redisStreamsKeys = []string{
	"address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
	"usernameFromEnv", "passwordFromEnv", "databaseIndex", "enableTLS", "unsafeSsl",
	"stream", "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
}

// checkScaledObjects checks KEDA's view of the task queue against the worker's.
func checkScaledObjects(t *testing.T, r *rendering, contract queueContract) {
	for _, so := range r.scaledObjects() {
		id := r.name + " ScaledObject/" + so.Name
		ref := so.Spec.ScaleTargetRef
		if ref == nil || (ref.Kind != "" && ref.Kind != "Deployment") {
			t.Errorf("%s: scaleTargetRef must name a Deployment", id)
			continue
		}
		d := r.deployment(ref.Name)
		if d == nil {
			t.Errorf("%s: scale target Deployment %q is not in the rendering", id, ref.Name)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("%s: Deployment %s still sets replicas (%d); with KEDA owning the count, every apply would reset it", id, d.Name, *d.Spec.Replicas)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 {
			t.Errorf("%s: minReplicaCount must be at least 1: delayed retries and reclaiming a crashed worker's tasks need a live worker", id)
		}
		c := containerOf(d, "taskwire-worker")
		if c == nil {
			t.Errorf("%s: target %s runs no taskwire-worker container", id, d.Name)
			continue
		}
		env := resolveEnv(t, r, c, id)
		concurrency := env.effective(binaryByName("taskwire-worker"), "WORKER_CONCURRENCY")
		prefix := env.effective(binaryByName("taskwire-worker"), "TASKWIRE_PREFIX")

		var metrics []string
		for _, tr := range so.Spec.Triggers {
			tid := id + " trigger " + tr.Name
			if tr.Type != "redis-streams" {
				t.Errorf("%s: type %q, want redis-streams", tid, tr.Type)
				continue
			}
			for k := range tr.Metadata {
				if !slices.Contains(redisStreamsKeys, k) {
					t.Errorf("%s: metadata key %q is not one the redis-streams scaler reads", tid, k)
				}
			}
			md := tr.Metadata
			// Each kind has its own stream (store.Keys.Queue(kind)); the manifests
			// scale taskwire-worker on the stream of its main kind, export.
			want := prefix + contract.queueSuffix
			if len(want) > 0 && want[len(want)-1] == ':' {
				want += "export"
			}
			if md["stream"] != want {
				t.Errorf("%s: stream %q, want %q (TASKWIRE_PREFIX + the store's queue key of export)", tid, md["stream"], want)
			}
			if md["consumerGroup"] != contract.group {
				t.Errorf("%s: consumerGroup %q, want %q (store.QueueGroup)", tid, md["consumerGroup"], contract.group)
			}
			var metric string
			for _, k := range []string{"lagCount", "pendingEntriesCount", "streamLength"} {
				if v, ok := md[k]; ok {
					if metric != "" {
						t.Errorf("%s: sets both %s and %s; KEDA uses only one", tid, metric, k)
					}
					metric = k
					if concurrency != "" && v != concurrency {
						t.Errorf("%s: %s target %q, want WORKER_CONCURRENCY (%s): one replica per %s tasks", tid, k, v, concurrency, concurrency)
					}
				}
			}
			metrics = append(metrics, metric)
			checkKEDAAddress(t, r, tid, md, env)
			if tr.AuthenticationRef == nil {
				continue
			}
			ta := r.triggerAuthentication(tr.AuthenticationRef.Name)
			if ta == nil {
				t.Errorf("%s: TriggerAuthentication %q is not in the rendering", tid, tr.AuthenticationRef.Name)
				continue
			}
			for _, s := range ta.Spec.SecretTargetRef {
				if r.secret(s.Name) == nil && !r.external[s.Name] {
					t.Errorf("%s: TriggerAuthentication %s refers to Secret %q, which is neither rendered nor expected beside the overlay", tid, ta.Name, s.Name)
				} else if sec := r.secret(s.Name); sec != nil {
					if _, ok := sec.Data[s.Key]; !ok {
						if _, ok := sec.StringData[s.Key]; !ok {
							t.Errorf("%s: Secret %s has no key %q", tid, s.Name, s.Key)
						}
					}
				}
			}
		}
		// Backlog alone would scale busy workers away; running tasks alone can
		// never ask for more than the workers already take.
		if !slices.Contains(metrics, "lagCount") || !slices.Contains(metrics, "pendingEntriesCount") {
			t.Errorf("%s: triggers scale on %v; want both lagCount (backlog) and pendingEntriesCount (running tasks)", id, metrics)
		}
	}
}

// checkKEDAAddress compares the scaler's Redis address with REDIS_URL, when the
// rendering holds its value.
func checkKEDAAddress(t *testing.T, r *rendering, tid string, md map[string]string, env *containerEnv) {
	addr := md["address"]
	if addr == "" {
		t.Errorf("%s: no address", tid)
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Errorf("%s: address %q is not host:port", tid, addr)
	}
	redisURL, known := env.values["REDIS_URL"]
	if !known {
		return // in a Secret created outside the overlay
	}
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Errorf("%s: REDIS_URL does not parse: %v", tid, err)
		return
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	if addr != host {
		t.Errorf("%s: address %q, but the worker's REDIS_URL points at %q", tid, addr, host)
	}
	db := "0"
	if p := u.Path; len(p) > 1 {
		db = p[1:]
	}
	if got := md["databaseIndex"]; got == "" && db != "0" || got != "" && got != db {
		t.Errorf("%s: databaseIndex %q, but REDIS_URL uses database %s", tid, got, db)
	}
	if tls := u.Scheme == "rediss"; strconv.FormatBool(tls) != orDefault(md["enableTLS"], "false") {
		t.Errorf("%s: enableTLS %q, but REDIS_URL scheme is %s", tid, md["enableTLS"], u.Scheme)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
