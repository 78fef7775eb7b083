package wire

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The value rules: how a Go value travels as an event argument.
//
// Socket.IO clients receive JSON, plus binary where the value holds binary. So an
// argument is sent as the JavaScript value a Node program would pass to get what
// encoding/json would show a client, with two additions that JSON cannot express
// and Socket.IO can: []byte (and [N]byte) arrive as binary, and time.Time as a
// Date (a client sees its ISO string). In detail:
//
//   - nil, booleans, strings and numbers as themselves (every Go integer and
//     float type; JavaScript has one number type, so 2.0 and 2 are the same);
//   - []byte, [N]byte: binary;
//   - time.Time (and *time.Time): a date;
//   - json.RawMessage, and any type with a MarshalJSON method: the value its JSON
//     holds (objects keep their key order);
//   - a type with a MarshalText method (net.IP, uuid.UUID ...): its text;
//   - structs: objects with the names and rules of encoding/json (json tags,
//     omitempty, omitzero, string, "-", embedded structs promoted), fields in
//     declaration order, each value by these rules (so a []byte field is binary);
//   - maps with string, integer or MarshalText keys: objects with sorted keys;
//   - slices and arrays: arrays; pointers and interfaces: what they point to, or
//     null.
//
// Functions, channels and complex numbers are errors, as is nesting deeper than
// MaxDepth (which also catches cyclic values).
//
// The same rules write msgpack (broadcasts), JSON (requests, cluster messages;
// dates as ISO strings, binary as msgpack instead or as a Buffer object where Node
// does so) and the generic values of Normalize (what a server delivers locally),
// so what a client receives does not depend on the path an event took.

// MaxDepth is how deeply arrays and maps may nest in a value, and the limit a
// reader of these messages should apply too: a message of a few megabytes that
// nests arrays millions deep would overflow the stack of a recursive decoder, which
// kills the process rather than returning an error. Real Socket.IO payloads nest a
// handful of levels.
const MaxDepth = 512

var (
	timeType           = reflect.TypeFor[time.Time]()
	jsonMarshalerType  = reflect.TypeFor[json.Marshaler]()
	textMarshalerType  = reflect.TypeFor[encoding.TextMarshaler]()
	isZeroerType       = reflect.TypeFor[interface{ IsZero() bool }]()
	errUnsupportedType = errors.New("unsupported type")
)

type planKind uint8

const (
	kindUnsupported planKind = iota
	kindTime
	kindJSON // implements json.Marshaler
	kindText // implements encoding.TextMarshaler
	kindBytes
	kindByteArray
	kindBool
	kindInt
	kindUint
	kindFloat32
	kindFloat64
	kindString
	kindSlice
	kindArray
	kindMap
	kindStruct
	kindPointer
	kindInterface
)

// plan is what the value rules do with one type, computed once per type.
type plan struct {
	kind planKind
	// addrJSON, addrText: *T has the method, used when the value is addressable
	// (a struct field reached through a pointer, a slice element), as
	// encoding/json does.
	addrJSON, addrText bool
	fields             []field // kindStruct
	keyKind            planKind
	keyText            bool // map keys: MarshalText
}

// field is one JSON field of a struct.
type field struct {
	name      string
	index     []int
	typ       reflect.Type // the field's type (not dereferenced)
	omitEmpty bool
	omitZero  bool
	zeroer    int8 // omitZero: 1 the type has IsZero, 2 its pointer has
	quoted    bool // the ",string" option
	// cached holds planOf(typ) once used (not computed with the struct's plan:
	// a struct may contain itself).
	cached *atomic.Pointer[plan]
}

func (f *field) planOf() *plan {
	if p := f.cached.Load(); p != nil {
		return p
	}
	p := planOf(f.typ)
	f.cached.Store(p)
	return p
}

var plans sync.Map // reflect.Type -> *plan

func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p, _ := plans.LoadOrStore(t, makePlan(t))
	return p.(*plan)
}

func marshalsItself(t reflect.Type) bool {
	return t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

func makePlan(t reflect.Type) *plan {
	p := &plan{}
	k := t.Kind()
	switch {
	case t == timeType:
		p.kind = kindTime
		return p
	case k == reflect.Pointer:
		// Through the pointer: its element is addressable there, so methods with
		// pointer receivers apply, and *time.Time is a date like time.Time.
		p.kind = kindPointer
		return p
	case k != reflect.Interface && t.Implements(jsonMarshalerType):
		p.kind = kindJSON
		return p
	case k != reflect.Interface && t.Implements(textMarshalerType):
		p.kind = kindText
		p.addrJSON = reflect.PointerTo(t).Implements(jsonMarshalerType)
		return p
	}
	if k != reflect.Interface {
		p.addrJSON = reflect.PointerTo(t).Implements(jsonMarshalerType)
		p.addrText = reflect.PointerTo(t).Implements(textMarshalerType)
	}
	switch k {
	case reflect.Bool:
		p.kind = kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind = kindInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.kind = kindUint
	case reflect.Float32:
		p.kind = kindFloat32
	case reflect.Float64:
		p.kind = kindFloat64
	case reflect.String:
		p.kind = kindString
	case reflect.Slice:
		p.kind = kindSlice
		if t.Elem().Kind() == reflect.Uint8 && !marshalsItself(t.Elem()) {
			p.kind = kindBytes
		}
	case reflect.Array:
		p.kind = kindArray
		if t.Elem().Kind() == reflect.Uint8 && !marshalsItself(t.Elem()) {
			p.kind = kindByteArray
		}
	case reflect.Map:
		kt := t.Key()
		switch {
		case kt.Kind() == reflect.String:
			p.keyKind = kindString
		case kt.Implements(textMarshalerType):
			p.keyText = true
		default:
			switch kt.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				p.keyKind = kindInt
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				p.keyKind = kindUint
			default:
				return p // unsupported key type
			}
		}
		p.kind = kindMap
	case reflect.Struct:
		p.kind = kindStruct
		p.fields = structFields(t)
	case reflect.Interface:
		p.kind = kindInterface
	}
	return p
}

// candidate is a field found while walking a struct and its embedded structs.
type candidate struct {
	field
	depth  int
	tagged bool
	dup    bool // its struct was embedded more than once at this depth
}

// structFields lists the JSON fields of struct type t with encoding/json's rules:
// exported fields (and the exported fields of embedded structs, promoted), named
// by their json tag or their Go name; when several fields get one name, the least
// nested wins, a tagged one over untagged ones at the same depth; otherwise none
// of them is kept. Fields come in declaration order.
func structFields(t reflect.Type) []field {
	type level struct {
		typ   reflect.Type
		index []int
		times int
	}
	var found []candidate
	seen := map[reflect.Type]bool{}
	current := []level{{typ: t, times: 1}}
	for depth := 0; len(current) > 0; depth++ {
		var next []level
		nextAt := map[reflect.Type]int{}
		for _, lv := range current {
			if seen[lv.typ] {
				continue
			}
			seen[lv.typ] = true
			for i := 0; i < lv.typ.NumField(); i++ {
				sf := lv.typ.Field(i)
				ft := sf.Type
				if sf.Anonymous {
					et := ft
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTagName(name) {
					name = ""
				}
				index := append(slices.Clip(lv.index), i)
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					// An untagged embedded struct: its fields are promoted.
					if j, ok := nextAt[ft]; ok {
						next[j].times++
					} else {
						nextAt[ft] = len(next)
						next = append(next, level{typ: ft, index: index, times: 1})
					}
					continue
				}
				f := field{name: name, index: index, typ: sf.Type, cached: new(atomic.Pointer[plan])}
				if f.name == "" {
					f.name = sf.Name
				}
				for _, o := range strings.Split(opts, ",") {
					switch o {
					case "omitempty":
						f.omitEmpty = true
					case "omitzero":
						f.omitZero = true
						switch {
						case sf.Type.Implements(isZeroerType):
							f.zeroer = 1
						case sf.Type.Kind() != reflect.Pointer && reflect.PointerTo(sf.Type).Implements(isZeroerType):
							f.zeroer = 2
						}
					case "string":
						switch ft.Kind() {
						case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
							reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
							reflect.Float32, reflect.Float64, reflect.String:
							f.quoted = true
						}
					}
				}
				found = append(found, candidate{field: f, depth: depth, tagged: name != "", dup: lv.times > 1})
			}
		}
		current = next
	}
	// Keep, for each name, the one dominant field.
	byName := map[string][]candidate{}
	var order []string
	for _, c := range found {
		if _, ok := byName[c.name]; !ok {
			order = append(order, c.name)
		}
		byName[c.name] = append(byName[c.name], c)
	}
	var out []field
	for _, name := range order {
		cs := byName[name]
		minDepth := cs[0].depth
		for _, c := range cs {
			minDepth = min(minDepth, c.depth)
		}
		var top []candidate
		anyTagged := false
		for _, c := range cs {
			if c.depth == minDepth {
				top = append(top, c)
				anyTagged = anyTagged || c.tagged
			}
		}
		if anyTagged {
			top = slices.DeleteFunc(top, func(c candidate) bool { return !c.tagged })
		}
		if len(top) == 1 && !top[0].dup {
			out = append(out, top[0].field)
		}
	}
	slices.SortFunc(out, func(a, b field) int { return slices.Compare(a.index, b.index) })
	return out
}

func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c > 0x7f):
			return false
		}
	}
	return true
}

// fieldValue returns the value of f in struct v, false when an embedded pointer
// on the way is nil (the field is then left out, as encoding/json does).
func fieldValue(v reflect.Value, f *field) (reflect.Value, bool) {
	for i, x := range f.index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// omitted reports whether f's options leave out its value v.
func omitted(f *field, v reflect.Value) bool {
	if f.omitEmpty {
		switch v.Kind() {
		case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
			if v.Len() == 0 {
				return true
			}
		case reflect.Bool:
			if !v.Bool() {
				return true
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if v.Int() == 0 {
				return true
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if v.Uint() == 0 {
				return true
			}
		case reflect.Float32, reflect.Float64:
			if v.Float() == 0 {
				return true
			}
		case reflect.Interface, reflect.Pointer:
			if v.IsNil() {
				return true
			}
		}
	}
	if f.omitZero {
		switch {
		case f.zeroer == 1:
			if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
				return true
			}
			return v.Interface().(interface{ IsZero() bool }).IsZero()
		case f.zeroer == 2 && v.CanAddr():
			return v.Addr().Interface().(interface{ IsZero() bool }).IsZero()
		default:
			return v.IsZero()
		}
	}
	return false
}

// writeValue writes v to s by the value rules.
func writeValue(s sink, v any, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	switch x := v.(type) {
	case nil:
		s.null()
	case string:
		s.str(x)
	case bool:
		s.boolean(x)
	case int:
		s.integer(int64(x))
	case int64:
		s.integer(x)
	case int32:
		s.integer(int64(x))
	case uint64:
		s.unsigned(x)
	case float64:
		s.float(x, 64)
	case []byte:
		if x == nil {
			s.null()
			return nil
		}
		return s.binary(x)
	case time.Time:
		s.timestamp(x)
	case []any:
		if x == nil {
			s.null()
			return nil
		}
		s.beginArray(len(x))
		for _, e := range x {
			if err := writeValue(s, e, depth+1); err != nil {
				return err
			}
		}
		s.endArray()
	case map[string]any:
		if x == nil {
			s.null()
			return nil
		}
		var buf [16]string
		keys := buf[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		s.beginObject(len(keys))
		for _, k := range keys {
			s.key(k)
			if err := writeValue(s, x[k], depth+1); err != nil {
				return err
			}
		}
		s.endObject()
	case []string:
		if x == nil {
			s.null()
			return nil
		}
		s.beginArray(len(x))
		for _, e := range x {
			s.str(e)
		}
		s.endArray()
	case json.RawMessage:
		return writeJSON(s, x, depth)
	case jsonObject:
		s.beginObject(len(x))
		for _, m := range x {
			s.key(m.key)
			if err := writeValue(s, m.value, depth+1); err != nil {
				return err
			}
		}
		s.endObject()
	default:
		return writeReflect(s, reflect.ValueOf(v), depth)
	}
	return nil
}

func writeReflect(s sink, v reflect.Value, depth int) error {
	if !v.IsValid() {
		s.null()
		return nil
	}
	return writePlanned(s, v, planOf(v.Type()), depth)
}

// writePlanned writes v, whose plan is p.
func writePlanned(s sink, v reflect.Value, p *plan, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	if v.CanAddr() && (p.addrJSON || p.addrText) {
		if p.addrJSON {
			return marshalJSON(s, v.Addr().Interface().(json.Marshaler), depth)
		}
		return marshalText(s, v.Addr().Interface().(encoding.TextMarshaler))
	}
	switch p.kind {
	case kindTime:
		s.timestamp(v.Interface().(time.Time))
	case kindJSON:
		return marshalJSON(s, v.Interface().(json.Marshaler), depth)
	case kindText:
		return marshalText(s, v.Interface().(encoding.TextMarshaler))
	case kindBool:
		s.boolean(v.Bool())
	case kindInt:
		s.integer(v.Int())
	case kindUint:
		s.unsigned(v.Uint())
	case kindFloat32:
		s.float(v.Float(), 32)
	case kindFloat64:
		s.float(v.Float(), 64)
	case kindString:
		s.str(v.String())
	case kindBytes:
		if v.IsNil() {
			s.null()
			return nil
		}
		return s.binary(v.Bytes())
	case kindByteArray:
		return s.binary(arrayBytes(v))
	case kindSlice, kindArray:
		if p.kind == kindSlice && v.IsNil() {
			s.null()
			return nil
		}
		n := v.Len()
		s.beginArray(n)
		for i := 0; i < n; i++ {
			if err := writeReflect(s, v.Index(i), depth+1); err != nil {
				return err
			}
		}
		s.endArray()
	case kindMap:
		if v.IsNil() {
			s.null()
			return nil
		}
		keys, err := mapKeys(p, v)
		if err != nil {
			return err
		}
		s.beginObject(len(keys))
		for _, k := range keys {
			s.key(k.name)
			if err := writeReflect(s, v.MapIndex(k.value), depth+1); err != nil {
				return err
			}
		}
		s.endObject()
	case kindStruct:
		n := 0
		for i := range p.fields {
			if fv, ok := fieldValue(v, &p.fields[i]); ok && !omitted(&p.fields[i], fv) {
				n++
			}
		}
		s.beginObject(n)
		for i := range p.fields {
			f := &p.fields[i]
			fv, ok := fieldValue(v, f)
			if !ok || omitted(f, fv) {
				continue
			}
			s.key(f.name)
			if f.quoted {
				writeQuoted(s, fv)
				continue
			}
			if err := writePlanned(s, fv, f.planOf(), depth+1); err != nil {
				return fmt.Errorf("field %s: %w", f.name, err)
			}
		}
		s.endObject()
	case kindPointer, kindInterface:
		if v.IsNil() {
			s.null()
			return nil
		}
		return writeReflect(s, v.Elem(), depth+1)
	default:
		return fmt.Errorf("%w %s", errUnsupportedType, v.Type())
	}
	return nil
}

func arrayBytes(v reflect.Value) []byte {
	if v.CanAddr() {
		return v.Bytes()
	}
	b := make([]byte, v.Len())
	reflect.Copy(reflect.ValueOf(b), v)
	return b
}

type mapKey struct {
	name  string
	value reflect.Value
}

// mapKeys returns the keys of map v as strings, sorted.
func mapKeys(p *plan, v reflect.Value) ([]mapKey, error) {
	if p.keyKind == kindUnsupported && !p.keyText {
		return nil, fmt.Errorf("%w: map key %s", errUnsupportedType, v.Type().Key())
	}
	keys := make([]mapKey, 0, v.Len())
	it := v.MapRange()
	for it.Next() {
		k := it.Key()
		var name string
		switch {
		case p.keyKind == kindString:
			name = k.String()
		case p.keyText:
			if k.Kind() == reflect.Pointer && k.IsNil() {
				break
			}
			b, err := k.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return nil, fmt.Errorf("map key: %w", err)
			}
			name = string(b)
		case p.keyKind == kindInt:
			name = strconv.FormatInt(k.Int(), 10)
		default:
			name = strconv.FormatUint(k.Uint(), 10)
		}
		keys = append(keys, mapKey{name, k})
	}
	slices.SortFunc(keys, func(a, b mapKey) int { return strings.Compare(a.name, b.name) })
	return keys, nil
}

// writeQuoted writes a scalar field with the ",string" option: the JSON text of
// the value, as a string.
func writeQuoted(s sink, v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			s.null()
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Bool:
		s.str(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s.str(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		s.str(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32:
		s.str(string(AppendJSNumber(nil, v.Float(), 32)))
	case reflect.Float64:
		s.str(string(AppendJSNumber(nil, v.Float(), 64)))
	default:
		s.str(string(AppendJSString(nil, v.String())))
	}
}

func marshalJSON(s sink, m json.Marshaler, depth int) error {
	if isNilPointer(m) {
		s.null()
		return nil
	}
	b, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("MarshalJSON of %T: %w", m, err)
	}
	return writeJSON(s, b, depth)
}

func marshalText(s sink, m encoding.TextMarshaler) error {
	if isNilPointer(m) {
		s.null()
		return nil
	}
	b, err := m.MarshalText()
	if err != nil {
		return fmt.Errorf("MarshalText of %T: %w", m, err)
	}
	s.str(string(b))
	return nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// writeJSON writes the value that the JSON text b holds.
func writeJSON(s sink, b []byte, depth int) error {
	v, err := parseJSON(b, depth)
	if err != nil {
		return err
	}
	return writeValue(s, v, depth)
}

// jsonObject is a JSON object with its keys in their order.
type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value any
}

// parseJSON reads one JSON value: objects as jsonObject, arrays as []any,
// numbers as int64 when they are integers that fit and float64 otherwise.
func parseJSON(b []byte, depth int) (any, error) {
	if len(b) == 0 {
		return nil, nil // a nil json.RawMessage is null
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseJSONValue(dec, depth)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("invalid JSON: data after the value")
	}
	return v, nil
}

func parseJSONValue(dec *json.Decoder, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			arr := []any{}
			for dec.More() {
				e, err := parseJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, e)
			}
			_, err := dec.Token()
			return arr, err
		case '{':
			obj := jsonObject{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				e, err := parseJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj = append(obj, jsonMember{kt.(string), e})
			}
			_, err := dec.Token()
			return obj, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return jsonNumber(string(t)), nil
	}
	return tok, nil
}

func jsonNumber(s string) any {
	if !strings.ContainsAny(s, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	f, _ := strconv.ParseFloat(s, 64) // the decoder checked the syntax; out of range gives ±Inf
	return f
}

// Normalize returns v by the value rules as the generic values a decoder gives:
// nil, bool, string, int64, uint64, float32, float64, []byte, time.Time, []any and
// map[string]any. A server uses it to deliver locally exactly what remote servers
// deliver after decoding the message it publishes: structs become maps with their
// JSON names, json.Marshaler and encoding.TextMarshaler values what they marshal to,
// binary stays binary.
func Normalize(v any) (any, error) { return normalizeValue(v, 0) }

func normalizeValue(v any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, int64, uint64, float32, float64, time.Time:
		return x, nil
	case int:
		return int64(x), nil
	case []byte:
		if x == nil {
			return nil, nil
		}
		return x, nil
	case []any:
		if x == nil {
			return nil, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		if x == nil {
			return nil, nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case json.RawMessage:
		return normalizeJSONText(x, depth)
	case jsonObject:
		out := make(map[string]any, len(x))
		for _, m := range x {
			n, err := normalizeValue(m.value, depth+1)
			if err != nil {
				return nil, err
			}
			out[m.key] = n
		}
		return out, nil
	}
	return normalizeReflect(reflect.ValueOf(v), depth)
}

func normalizeJSONText(b []byte, depth int) (any, error) {
	v, err := parseJSON(b, depth)
	if err != nil {
		return nil, err
	}
	return normalizeValue(v, depth)
}

func normalizeReflect(v reflect.Value, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	if !v.IsValid() {
		return nil, nil
	}
	p := planOf(v.Type())
	var jm json.Marshaler
	var tm encoding.TextMarshaler
	switch {
	case v.CanAddr() && p.addrJSON:
		jm = v.Addr().Interface().(json.Marshaler)
	case p.kind == kindJSON:
		jm = v.Interface().(json.Marshaler)
	case v.CanAddr() && p.addrText:
		tm = v.Addr().Interface().(encoding.TextMarshaler)
	case p.kind == kindText:
		tm = v.Interface().(encoding.TextMarshaler)
	}
	if jm != nil {
		if isNilPointer(jm) {
			return nil, nil
		}
		b, err := jm.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("MarshalJSON of %T: %w", jm, err)
		}
		return normalizeJSONText(b, depth)
	}
	if tm != nil {
		if isNilPointer(tm) {
			return nil, nil
		}
		b, err := tm.MarshalText()
		if err != nil {
			return nil, fmt.Errorf("MarshalText of %T: %w", tm, err)
		}
		return string(b), nil
	}
	switch p.kind {
	case kindTime:
		return v.Interface().(time.Time), nil
	case kindBool:
		return v.Bool(), nil
	case kindInt:
		return v.Int(), nil
	case kindUint:
		return v.Uint(), nil
	case kindFloat32:
		return float32(v.Float()), nil
	case kindFloat64:
		return v.Float(), nil
	case kindString:
		return v.String(), nil
	case kindBytes:
		if v.IsNil() {
			return nil, nil
		}
		return v.Bytes(), nil
	case kindByteArray:
		return bytes.Clone(arrayBytes(v)), nil
	case kindSlice, kindArray:
		if p.kind == kindSlice && v.IsNil() {
			return nil, nil
		}
		out := make([]any, v.Len())
		for i := range out {
			n, err := normalizeReflect(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case kindMap:
		if v.IsNil() {
			return nil, nil
		}
		keys, err := mapKeys(p, v)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			n, err := normalizeReflect(v.MapIndex(k.value), depth+1)
			if err != nil {
				return nil, err
			}
			out[k.name] = n
		}
		return out, nil
	case kindStruct:
		out := make(map[string]any, len(p.fields))
		for i := range p.fields {
			f := &p.fields[i]
			fv, ok := fieldValue(v, f)
			if !ok || omitted(f, fv) {
				continue
			}
			if f.quoted {
				var w scalarSink
				writeQuoted(&w, fv)
				out[f.name] = w.v
				continue
			}
			n, err := normalizeReflect(fv, depth+1)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.name, err)
			}
			out[f.name] = n
		}
		return out, nil
	case kindPointer, kindInterface:
		if v.IsNil() {
			return nil, nil
		}
		return normalizeReflect(v.Elem(), depth+1)
	}
	return nil, fmt.Errorf("%w %s", errUnsupportedType, v.Type())
}

// scalarSink is a sink that keeps one scalar (a quoted field's string or null).
type scalarSink struct{ v any }

func (c *scalarSink) null()                  { c.v = nil }
func (c *scalarSink) boolean(b bool)         { c.v = b }
func (c *scalarSink) integer(n int64)        { c.v = n }
func (c *scalarSink) unsigned(n uint64)      { c.v = n }
func (c *scalarSink) float(f float64, _ int) { c.v = f }
func (c *scalarSink) str(s string)           { c.v = s }
func (c *scalarSink) binary(b []byte) error  { c.v = b; return nil }
func (c *scalarSink) timestamp(t time.Time)  { c.v = t }
func (c *scalarSink) beginArray(int)         {}
func (c *scalarSink) endArray()              {}
func (c *scalarSink) beginObject(int)        {}
func (c *scalarSink) key(string)             {}
func (c *scalarSink) endObject()             {}
