package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/shared/tasks"
)

// The kind registry: workers publish the kinds they serve (RegisterKinds, at start
// and then every lease/3), servers read them (Kinds, Kind), so a new kind needs no
// change on the servers. A worker is live for a kind until its lease ends; a kind
// stays known for KindRetention after its last refresh, with 0 workers, so tasks of
// a kind scaled to zero are still accepted.

// ErrUnknownKind is returned by Kind for a kind no worker has registered (or whose
// registration expired).
var ErrUnknownKind = errors.New("store: unknown kind")

// KindRetention is how long a kind stays known after its last worker refreshed it.
const KindRetention = 7 * 24 * time.Hour

// Kinds is the key of the sorted set of the registered kind names, scored by the
// Unix millisecond of their last refresh.
func (k Keys) Kinds() string { return k.Prefix + ":kinds" }

// Kind is the key of the hash of the descriptors of kind name, by schema hash.
func (k Keys) Kind(name string) string { return k.Prefix + ":kind:" + name }

// KindWorkers is the key of the sorted set of the live workers of kind name:
// members "<worker> <schema hash>", scored by the Unix millisecond their lease
// ends.
func (k Keys) KindWorkers(name string) string { return k.Prefix + ":kind:" + name + ":workers" }

// KindVersion is one version of a kind: a descriptor and the workers that serve it.
type KindVersion struct {
	// Info is the descriptor.
	Info tasks.KindInfo
	// Workers counts the live workers that serve this version.
	Workers int
	// LastSeen is the end of the latest lease of a worker of this version (the
	// time it was registered, for versions without a live worker).
	LastSeen time.Time
}

// KindStatus is what the registry knows of one kind.
type KindStatus struct {
	// Name is the kind's name.
	Name string
	// Versions are the known versions: those with live workers first (most
	// workers first, then the most recently seen), then the others, most
	// recently seen first. Versions[0] is the current one.
	Versions []KindVersion
}

// Current returns the current version of the kind.
func (k *KindStatus) Current() *KindVersion { return &k.Versions[0] }

// Workers counts the live workers of every version.
func (k *KindStatus) Workers() int {
	n := 0
	for _, v := range k.Versions {
		n += v.Workers
	}
	return n
}

// Conflict reports whether live workers run more than one version of the kind.
func (k *KindStatus) Conflict() bool {
	live := 0
	for _, v := range k.Versions {
		if v.Workers > 0 {
			live++
		}
	}
	return live > 1
}

// registeredAt is kept with each descriptor in the registry.
type storedKind struct {
	tasks.KindInfo
	RegisteredAt int64 `json:"registeredAt"`
}

// RegisterKinds records that worker serves kinds until now+lease. Call it at start
// and then well within every lease (the worker does every lease/3).
func (s *Store) RegisterKinds(ctx context.Context, worker string, kinds []tasks.KindInfo, lease time.Duration) error {
	now := time.Now()
	until := now.Add(lease).UnixMilli()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range kinds {
			b, err := json.Marshal(storedKind{KindInfo: k, RegisteredAt: now.UnixMilli()})
			if err != nil {
				return err
			}
			p.ZAdd(ctx, s.keys.Kinds(), redis.Z{Score: float64(now.UnixMilli()), Member: k.Name})
			p.HSet(ctx, s.keys.Kind(k.Name), k.SchemaHash, b)
			w := s.keys.KindWorkers(k.Name)
			p.ZRemRangeByScore(ctx, w, "-inf", fmt.Sprint(now.UnixMilli()))
			p.ZAdd(ctx, w, redis.Z{Score: float64(until), Member: worker + " " + k.SchemaHash})
			p.PExpire(ctx, s.keys.Kind(k.Name), KindRetention)
			p.PExpire(ctx, w, KindRetention)
		}
		p.ZRemRangeByScore(ctx, s.keys.Kinds(), "-inf", fmt.Sprint(now.Add(-KindRetention).UnixMilli()))
		p.PExpire(ctx, s.keys.Kinds(), KindRetention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: register kinds: %w", err)
	}
	return nil
}

// UnregisterKinds records that worker no longer serves kinds (it shuts down); the
// kinds stay known.
func (s *Store) UnregisterKinds(ctx context.Context, worker string, kinds []tasks.KindInfo) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range kinds {
			p.ZRem(ctx, s.keys.KindWorkers(k.Name), worker+" "+k.SchemaHash)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: unregister kinds: %w", err)
	}
	return nil
}

// Kinds returns every known kind, by name, in two round trips.
func (s *Store) Kinds(ctx context.Context) ([]KindStatus, error) {
	cutoff := time.Now().Add(-KindRetention).UnixMilli()
	names, err := s.rdb.ZRangeByScore(ctx, s.keys.Kinds(), &redis.ZRangeBy{Min: fmt.Sprint(cutoff), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: kinds: %w", err)
	}
	slices.Sort(names)
	return s.kinds(ctx, names)
}

// Kind returns what the registry knows of kind name, or ErrUnknownKind.
func (s *Store) Kind(ctx context.Context, name string) (*KindStatus, error) {
	if !tasks.ValidKindName(name) {
		return nil, ErrUnknownKind
	}
	ks, err := s.kinds(ctx, []string{name})
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, ErrUnknownKind
	}
	return &ks[0], nil
}

// kinds reads the descriptors and live workers of names in one round trip and
// leaves out those without a descriptor.
func (s *Store) kinds(ctx context.Context, names []string) ([]KindStatus, error) {
	if len(names) == 0 {
		return []KindStatus{}, nil
	}
	now := time.Now().UnixMilli()
	descs := make([]*redis.MapStringStringCmd, len(names))
	live := make([]*redis.ZSliceCmd, len(names))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			descs[i] = p.HGetAll(ctx, s.keys.Kind(n))
			live[i] = p.ZRangeByScoreWithScores(ctx, s.keys.KindWorkers(n), &redis.ZRangeBy{Min: fmt.Sprint(now), Max: "+inf"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: kinds: %w", err)
	}
	out := make([]KindStatus, 0, len(names))
	for i, n := range names {
		workers := map[string]int{}
		seen := map[string]int64{}
		for _, z := range live[i].Val() {
			m, _ := z.Member.(string)
			_, hash, ok := strings.Cut(m, " ")
			if !ok {
				continue
			}
			workers[hash]++
			seen[hash] = max(seen[hash], int64(z.Score))
		}
		st := KindStatus{Name: n}
		for hash, raw := range descs[i].Val() {
			var sk storedKind
			if json.Unmarshal([]byte(raw), &sk) != nil || sk.Name != n {
				continue
			}
			sk.SchemaHash = hash
			last := seen[hash]
			if last == 0 {
				last = sk.RegisteredAt
			}
			st.Versions = append(st.Versions, KindVersion{Info: sk.KindInfo, Workers: workers[hash], LastSeen: time.UnixMilli(last).UTC()})
		}
		if len(st.Versions) == 0 {
			continue
		}
		slices.SortFunc(st.Versions, func(a, b KindVersion) int {
			if c := cmp.Compare(min(b.Workers, 1), min(a.Workers, 1)); c != 0 {
				return c
			}
			if c := cmp.Compare(b.Workers, a.Workers); c != 0 {
				return c
			}
			if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
				return c
			}
			return cmp.Compare(a.Info.SchemaHash, b.Info.SchemaHash)
		})
		out = append(out, st)
	}
	return out, nil
}
