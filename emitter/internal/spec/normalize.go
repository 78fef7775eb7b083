package spec

import (
	"math"
	"time"
)

// Normalize maps a value decoded from msgpack or JSON (or built from a spec) to a
// canonical form for comparison: every integral number that fits becomes int64
// (msgpack writes integral floats as integers), other numbers float64, []string and
// []any become []any, empty []byte is non-nil, times become their UTC RFC 3339 form
// with nanoseconds, NaN becomes the string "NaN" (so that it equals itself).
func Normalize(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	case uint:
		return normUint(uint64(v))
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		return normUint(v)
	case float32:
		return normFloat(float64(v))
	case float64:
		return normFloat(v)
	case []byte:
		if v == nil {
			return []byte{}
		}
		return v
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = Normalize(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = Normalize(x)
		}
		return out
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func normUint(u uint64) any {
	if u > math.MaxInt64 {
		return float64(u)
	}
	return int64(u)
}

func normFloat(f float64) any {
	if math.IsNaN(f) {
		return "NaN"
	}
	if f == math.Trunc(f) && !math.IsInf(f, 0) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}

// AsJSON maps a spec value to what a JSON message carries for it, as
// JSON.stringify writes it: dates become their ISO string (UTC, milliseconds), NaN
// and ±Infinity become null, -0 becomes 0, and with buffers binary becomes Node's
// {"type": "Buffer", "data": [bytes...]}.
func AsJSON(v any, buffers bool) any {
	switch v := v.(type) {
	case []byte:
		if !buffers {
			return v
		}
		data := make([]any, len(v))
		for i, c := range v {
			data[i] = int64(c)
		}
		return map[string]any{"type": "Buffer", "data": data}
	case time.Time:
		return time.UnixMilli(v.UnixMilli()).UTC().Format("2006-01-02T15:04:05.000Z")
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		if v == 0 {
			return 0.0
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = AsJSON(x, buffers)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = AsJSON(x, buffers)
		}
		return out
	}
	return v
}
