package wire

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// encoder is a msgpack encoder set up to write what notepack.io (the codec of Node's
// adapter and emitter) writes for the same values: integers and integral floats in
// their smallest form, maps with sorted keys (Go maps have no order), and structs
// with the field names of their json tags, as a JSON client would see them.
type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.SetCustomStructTag("json")
	e.enc.UseCompactInts(true)
	e.enc.UseCompactFloats(true)
	e.enc.SetSortMapKeys(true)
	return e
}}

func getEncoder() *encoder {
	e := encoders.Get().(*encoder)
	e.buf.Reset()
	return e
}

// bytes returns a copy of the encoded bytes and puts e back in the pool.
func (e *encoder) finish() []byte {
	out := bytes.Clone(e.buf.Bytes())
	if e.buf.Cap() <= 64<<10 {
		encoders.Put(e)
	}
	return out
}

func (e *encoder) release() {
	if e.buf.Cap() <= 64<<10 {
		encoders.Put(e)
	}
}

func (e *encoder) str(s string) error { return e.enc.EncodeString(s) }

func (e *encoder) strings(ss []string) error {
	if err := e.enc.EncodeArrayLen(len(ss)); err != nil {
		return err
	}
	for _, s := range ss {
		if err := e.enc.EncodeString(s); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) values(vs []any) error {
	if err := e.enc.EncodeArrayLen(len(vs)); err != nil {
		return err
	}
	for i, v := range vs {
		if err := e.value(v); err != nil {
			return fmt.Errorf("argument %d: %w", i, err)
		}
	}
	return nil
}

func (e *encoder) value(v any) error {
	switch v := v.(type) {
	case nil:
		return e.enc.EncodeNil()
	case string:
		return e.enc.EncodeString(v)
	case []byte:
		return e.enc.EncodeBytes(v)
	case bool:
		return e.enc.EncodeBool(v)
	case int:
		return e.enc.EncodeInt(int64(v))
	case int64:
		return e.enc.EncodeInt(v)
	case float64:
		return e.enc.EncodeFloat64(v)
	}
	return e.enc.Encode(v)
}

// newDecoder returns a msgpack decoder for untrusted input: maps decode to
// map[string]any and structs are matched by json tag names.
func newDecoder(b []byte) *msgpack.Decoder {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.SetCustomStructTag("json")
	return d
}
