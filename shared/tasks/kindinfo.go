package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// KindInfo describes a kind of task as the workers that run it publish it: its
// name, what people are told about it, the JSON Schema of its parameters and its
// settings. Servers learn the kinds from these descriptors (shared/store's kind
// registry), so a new kind needs no change on the servers.
type KindInfo struct {
	// Name is the kind's name (ValidKindName).
	Name string `json:"name"`
	// Title is a short name for people ("CSV export").
	Title string `json:"title,omitempty"`
	// Description says in a sentence or two what the kind does.
	Description string `json:"description,omitempty"`
	// ParamsSchema is the JSON Schema (draft 2020-12) of the parameters: an object
	// schema.
	ParamsSchema json.RawMessage `json:"paramsSchema"`
	// SchemaHash identifies this version of the descriptor (Hash); workers that
	// publish different hashes for one kind run different versions of it.
	SchemaHash string `json:"schemaHash"`
	// MaxAttempts bounds the runs of one task of the kind (0: the server's default).
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// TimeoutSeconds bounds one attempt (0: no bound).
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// ResultMaxBytes bounds the size of a result (0: the worker's default).
	ResultMaxBytes int64 `json:"resultMaxBytes,omitempty"`
	// ProgressRate is the most progress events per second of one task (0: the
	// worker's default).
	ProgressRate float64 `json:"progressRate,omitempty"`
	// TotalParam names an integer parameter whose value is the amount of work a
	// task announces when it is created (export: "rows"), so a queued task
	// already shows its size.
	TotalParam string `json:"totalParam,omitempty"`
}

// Hash returns the version hash of k: 16 hex digits of the SHA-256 of its JSON
// form without SchemaHash. Two descriptors with the same schema and settings have
// the same hash.
func (k KindInfo) Hash() string {
	k.SchemaHash = ""
	if len(k.ParamsSchema) > 0 {
		// Compact, so that formatting does not change the version.
		var v any
		if json.Unmarshal(k.ParamsSchema, &v) == nil {
			k.ParamsSchema, _ = json.Marshal(v)
		}
	}
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// MaxKindNameLen bounds the length of a kind's name.
const MaxKindNameLen = 64

// ValidKindName reports whether s can name a kind: 1 to 64 lowercase letters,
// digits, '.', '-' or '_', starting with a letter or a digit.
func ValidKindName(s string) bool {
	if len(s) == 0 || len(s) > MaxKindNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}
