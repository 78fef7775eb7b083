package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// sink receives one value as a sequence of calls: scalars, and containers opened
// with their number of elements (objects: key/value pairs, each key given with key
// before its value) and closed after them. The msgpack and JSON writers below are
// its two implementations, so every message shape and every value rule is written
// once and produces both encodings.
type sink interface {
	null()
	boolean(b bool)
	integer(n int64)
	unsigned(n uint64)
	// float writes f; bits is 32 for a float32 (its shortest form), 64 otherwise.
	float(f float64, bits int)
	str(s string)
	// binary writes b, or fails with errBinary when the encoding cannot hold it.
	binary(b []byte) error
	timestamp(t time.Time)
	beginArray(n int)
	endArray()
	beginObject(n int)
	key(k string)
	endObject()
}

// errBinary is returned by a JSON writer that meets binary data it must not write
// as JSON: the caller encodes the message with msgpack instead, as Node's cluster
// adapters do.
var errBinary = errors.New("wire: binary data in a JSON message")

// mpWriter appends msgpack to b, writing what notepack.io (the codec of Node's
// adapter and emitter) writes for the same JavaScript values: integers in their
// smallest form, integral floats as integers (JavaScript has one number type),
// strings as str8/16/32 by byte length, binary as bin, dates as the timestamp
// extension (-1).
type mpWriter struct{ b []byte }

func (w *mpWriter) null() { w.b = append(w.b, 0xc0) }
func (w *mpWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 0xc3)
	} else {
		w.b = append(w.b, 0xc2)
	}
}

func (w *mpWriter) integer(n int64) {
	switch {
	case n >= 0:
		w.unsigned(uint64(n))
	case n >= -32:
		w.b = append(w.b, byte(n))
	case n >= math.MinInt8:
		w.b = append(w.b, 0xd0, byte(n))
	case n >= math.MinInt16:
		w.b = binary.BigEndian.AppendUint16(append(w.b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xd2), uint32(n))
	default:
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xd3), uint64(n))
	}
}

func (w *mpWriter) unsigned(n uint64) {
	switch {
	case n <= math.MaxInt8:
		w.b = append(w.b, byte(n))
	case n <= math.MaxUint8:
		w.b = append(w.b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		w.b = binary.BigEndian.AppendUint16(append(w.b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xce), uint32(n))
	default:
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xcf), n)
	}
}

// float writes integral values that an int64 holds as integers, and everything
// else as a float64 (or a float32 for a float32).
func (w *mpWriter) float(f float64, bits int) {
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 { // NaN and ±Inf fail these
		w.integer(int64(f))
		return
	}
	if bits == 32 {
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xca), math.Float32bits(float32(f)))
		return
	}
	w.b = binary.BigEndian.AppendUint64(append(w.b, 0xcb), math.Float64bits(f))
}

func (w *mpWriter) str(s string) {
	w.length(len(s), 0xa0, 32, 0xd9, 0xda, 0xdb)
	w.b = append(w.b, s...)
}

func (w *mpWriter) binary(b []byte) error {
	w.length(len(b), 0, 0, 0xc4, 0xc5, 0xc6)
	w.b = append(w.b, b...)
	return nil
}

// length writes a header: fix|n when n < fixMax (fixMax 0: no fix form), else the
// 8, 16 or 32 bit form (code8 0: no 8 bit form).
func (w *mpWriter) length(n int, fix byte, fixMax int, code8, code16, code32 byte) {
	switch {
	case n < fixMax:
		w.b = append(w.b, fix|byte(n))
	case n <= math.MaxUint8 && code8 != 0:
		w.b = append(w.b, code8, byte(n))
	case n <= math.MaxUint16:
		w.b = binary.BigEndian.AppendUint16(append(w.b, code16), uint16(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, code32), uint32(n))
	}
}

// timestamp writes the msgpack timestamp extension in its 32, 64 or 96 bit form.
func (w *mpWriter) timestamp(t time.Time) {
	secs := uint64(t.Unix())
	if secs>>34 == 0 {
		data := uint64(t.Nanosecond())<<34 | secs
		if data>>32 == 0 {
			w.b = binary.BigEndian.AppendUint32(append(w.b, 0xd6, 0xff), uint32(data))
			return
		}
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xd7, 0xff), data)
		return
	}
	w.b = binary.BigEndian.AppendUint32(append(w.b, 0xc7, 12, 0xff), uint32(t.Nanosecond()))
	w.b = binary.BigEndian.AppendUint64(w.b, secs)
}

func (w *mpWriter) beginArray(n int)  { w.length(n, 0x90, 16, 0, 0xdc, 0xdd) }
func (w *mpWriter) endArray()         {}
func (w *mpWriter) beginObject(n int) { w.length(n, 0x80, 16, 0, 0xde, 0xdf) }
func (w *mpWriter) key(k string)      { w.str(k) }
func (w *mpWriter) endObject()        {}

// jsonWriter appends JSON to b as JavaScript's JSON.stringify writes it for the
// same value: strings escape only '"', '\\' and control characters (U+2028, '<'
// and the like stay as they are), numbers use JavaScript's shortest form (1e+21,
// 1e-7), -0 is 0, NaN and ±Infinity are null, dates are ISO strings in UTC with
// milliseconds.
type jsonWriter struct {
	b []byte
	// buffers writes binary as Node's Buffer.toJSON does ({"type":"Buffer",
	// "data":[...]}, what JSON.stringify gives for a Buffer); without it binary
	// fails with errBinary.
	buffers bool

	need     bool // a value was written at this level: the next needs a comma
	afterKey bool // a key was just written: the next value needs no comma
}

func (w *jsonWriter) reset(buffers bool) {
	w.b, w.buffers, w.need, w.afterKey = w.b[:0], buffers, false, false
}

func (w *jsonWriter) sep() {
	if w.afterKey {
		w.afterKey = false
		return
	}
	if w.need {
		w.b = append(w.b, ',')
	}
}

func (w *jsonWriter) raw(s string) {
	w.sep()
	w.b = append(w.b, s...)
	w.need = true
}

func (w *jsonWriter) null() { w.raw("null") }

func (w *jsonWriter) boolean(v bool) {
	if v {
		w.raw("true")
	} else {
		w.raw("false")
	}
}

func (w *jsonWriter) integer(n int64) {
	w.sep()
	w.b = strconv.AppendInt(w.b, n, 10)
	w.need = true
}

func (w *jsonWriter) unsigned(n uint64) {
	w.sep()
	w.b = strconv.AppendUint(w.b, n, 10)
	w.need = true
}

func (w *jsonWriter) float(f float64, bits int) {
	w.sep()
	w.b = AppendJSNumber(w.b, f, bits)
	w.need = true
}

// AppendJSNumber appends f the way JSON.stringify writes a number (JavaScript's
// Number#toString): plain decimal from 1e-6 up to 1e21, exponent form (1e+21,
// 1.5e-7) outside, null for NaN and the infinities, 0 for -0. bits is 32 for a
// float32 (its shortest form), 64 otherwise. A server that turns received msgpack
// into the JSON its clients get writes numbers with it, as the encoder does.
func AppendJSNumber(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	if f == 0 {
		return append(b, '0') // also -0, which JSON.stringify writes as 0
	}
	abs := math.Abs(f)
	format := byte('f')
	if bits == 32 {
		if a := float32(abs); a < 1e-6 || a >= 1e21 {
			format = 'e'
		}
	} else if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// Go writes e-07 where JavaScript writes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func (w *jsonWriter) str(s string) {
	w.sep()
	w.b = AppendJSString(w.b, s)
	w.need = true
}

const hexDigits = "0123456789abcdef"

// AppendJSString appends s quoted as JSON.stringify does. Bytes that are not
// UTF-8 (a JavaScript string cannot hold them) become U+FFFD.
func AppendJSString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func (w *jsonWriter) binary(p []byte) error {
	if !w.buffers {
		return errBinary
	}
	w.beginObject(2)
	w.key("type")
	w.str("Buffer")
	w.key("data")
	w.beginArray(len(p))
	for _, c := range p {
		w.unsigned(uint64(c))
	}
	w.endArray()
	w.endObject()
	return nil
}

// timestamp writes t as Date#toJSON does: UTC, milliseconds, years outside
// 0..9999 with a sign and six digits.
func (w *jsonWriter) timestamp(t time.Time) {
	w.sep()
	w.b = AppendJSDate(w.b, t)
	w.need = true
}

// AppendJSDate appends t, unquoted, as Date#toJSON writes it: UTC, milliseconds,
// years outside 0..9999 with a sign and six digits.
func AppendJSDate(b []byte, t time.Time) []byte {
	t = time.UnixMilli(t.UnixMilli()).UTC()
	pad := func(b []byte, n, width int) []byte {
		s := strconv.Itoa(n)
		for i := len(s); i < width; i++ {
			b = append(b, '0')
		}
		return append(b, s...)
	}
	b = append(b, '"')
	switch y := t.Year(); {
	case y < 0:
		b = pad(append(b, '-'), -y, 6)
	case y > 9999:
		b = pad(append(b, '+'), y, 6)
	default:
		b = pad(b, y, 4)
	}
	b = pad(append(b, '-'), int(t.Month()), 2)
	b = pad(append(b, '-'), t.Day(), 2)
	b = pad(append(b, 'T'), t.Hour(), 2)
	b = pad(append(b, ':'), t.Minute(), 2)
	b = pad(append(b, ':'), t.Second(), 2)
	b = pad(append(b, '.'), t.Nanosecond()/1e6, 3)
	return append(b, 'Z', '"')
}

// open starts a container; once it is closed, a value was written at the
// enclosing level, so the next one there needs a comma.
func (w *jsonWriter) open(c byte) {
	w.sep()
	w.b = append(w.b, c)
	w.need = false
}

func (w *jsonWriter) close(c byte) {
	w.b = append(w.b, c)
	w.need = true
}

func (w *jsonWriter) beginArray(int)  { w.open('[') }
func (w *jsonWriter) endArray()       { w.close(']') }
func (w *jsonWriter) beginObject(int) { w.open('{') }
func (w *jsonWriter) endObject()      { w.close('}') }

func (w *jsonWriter) key(k string) {
	if w.need {
		w.b = append(w.b, ',')
	}
	w.b = AppendJSString(w.b, k)
	w.b = append(w.b, ':')
	w.afterKey = true
	w.need = true
}
