package main

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskwire/taskwire/shared/events"
)

// modulePrefix is the import path prefix of this repository's packages; the rest of
// an import path is the package's directory under the repository root.
const modulePrefix = "github.com/taskwire/taskwire/"

var (
	timeType       = reflect.TypeFor[time.Time]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	jsonMarshaler  = reflect.TypeFor[json.Marshaler]()
	textMarshaler  = reflect.TypeFor[encoding.TextMarshaler]()
)

// tsReserved are global TypeScript and DOM names a generated type must not shadow.
var tsReserved = map[string]bool{
	"Array": true, "Boolean": true, "Date": true, "Error": true, "Event": true, "Function": true,
	"JSON": true, "Map": true, "Number": true, "Object": true, "Partial": true, "Promise": true,
	"Record": true, "Request": true, "Response": true, "Set": true, "String": true, "Symbol": true,
}

// Generate returns the TypeScript contract, reading doc comments and constants from
// the Go sources under root.
func Generate(root string) ([]byte, error) {
	g := &generator{
		root:    root,
		sources: map[string]*pkgSource{},
		names:   map[reflect.Type]string{},
		byName:  map[string]reflect.Type{},
	}
	if err := g.checkEvents(); err != nil {
		return nil, err
	}
	for _, e := range serverEvents {
		if _, err := g.typeExpr(e.payload); err != nil {
			return nil, fmt.Errorf("event %s: %w", e.name, err)
		}
	}
	for _, e := range clientEvents {
		for _, t := range append([]reflect.Type{e.request}, e.acks...) {
			if _, err := g.typeExpr(t); err != nil {
				return nil, fmt.Errorf("event %s: %w", e.name, err)
			}
		}
	}
	for _, t := range extraTypes {
		if _, err := g.typeExpr(t); err != nil {
			return nil, err
		}
	}
	return g.render()
}

type generator struct {
	root    string
	sources map[string]*pkgSource // by import path
	names   map[reflect.Type]string
	byName  map[string]reflect.Type
	decls   []string // TypeScript declarations, in order of discovery
}

// source returns the parsed Go source of the package with the given import path.
func (g *generator) source(pkgPath string) (*pkgSource, error) {
	if s, ok := g.sources[pkgPath]; ok {
		return s, nil
	}
	rel, ok := strings.CutPrefix(pkgPath, modulePrefix)
	if !ok {
		return nil, fmt.Errorf("package %s is not part of this repository", pkgPath)
	}
	s, err := parsePackage(filepath.Join(g.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	g.sources[pkgPath] = s
	return s, nil
}

// checkEvents compares the event table with the constants of package events and
// with events.Names.
func (g *generator) checkEvents() error {
	src, err := g.source(reflect.TypeFor[events.Progress]().PkgPath())
	if err != nil {
		return err
	}
	table := map[string]string{}
	for _, e := range serverEvents {
		table[e.ident] = e.name
	}
	for _, e := range clientEvents {
		table[e.ident] = e.name
	}
	for _, c := range src.consts {
		if c.kind != constString || c.typeName != "" {
			continue
		}
		v, ok := table[c.ident]
		if !ok {
			return fmt.Errorf("events.%s (%q) is not in the tsgen contract table: add it with its payload to contract.go", c.ident, c.value)
		}
		if v != c.value {
			return fmt.Errorf("events.%s is %q in the source but %q in tsgen", c.ident, c.value, v)
		}
		delete(table, c.ident)
	}
	for ident := range table {
		return fmt.Errorf("tsgen lists events.%s, which the source of package events does not declare", ident)
	}
	var names []string
	for _, e := range serverEvents {
		names = append(names, e.name)
	}
	if !slices.Equal(names, events.Names) {
		return fmt.Errorf("server events in tsgen %q differ from events.Names %q", names, events.Names)
	}
	return nil
}

// tsName returns the TypeScript name of a named Go type.
func (g *generator) tsName(t reflect.Type) (string, error) {
	name := t.Name()
	for suffix, prefix := range tsPrefix {
		if strings.HasSuffix(t.PkgPath(), "/"+suffix) && !strings.HasPrefix(name, prefix) {
			name = prefix + name
		}
	}
	if tsReserved[name] || name == "Events" || strings.HasSuffix(name, "ToClientEvents") || strings.HasSuffix(name, "ToServerEvents") {
		return "", fmt.Errorf("type %s would be named %s, which TypeScript or this file already uses: add a prefix in tsPrefix", t, name)
	}
	if other, ok := g.byName[name]; ok && other != t {
		return "", fmt.Errorf("types %s and %s would both be named %s: add a prefix in tsPrefix", other, t, name)
	}
	return name, nil
}

// typeExpr returns the TypeScript type of the JSON encoding of t, declaring named
// types on first use.
func (g *generator) typeExpr(t reflect.Type) (string, error) {
	switch {
	case t == timeType:
		return "string", nil
	case t == rawMessageType:
		return "unknown", nil
	case t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler),
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler):
		return "", fmt.Errorf("type %s has its own JSON encoding, which tsgen cannot see: give it a case in typeExpr", t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number", nil
	case reflect.String:
		if t.Name() == "" || t.PkgPath() == "" || t == reflect.TypeFor[string]() {
			return "string", nil
		}
		return g.declare(t, g.enumDecl)
	case reflect.Pointer:
		return g.typeExpr(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return "string", nil // base64
		}
		elem, err := g.typeExpr(t.Elem())
		if err != nil {
			return "", err
		}
		if strings.ContainsAny(elem, "|&") {
			elem = "(" + elem + ")"
		}
		return elem + "[]", nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return "", fmt.Errorf("map %s: only string keys are supported", t)
		}
		elem, err := g.typeExpr(t.Elem())
		if err != nil {
			return "", err
		}
		return "{ [key: string]: " + elem + " }", nil
	case reflect.Interface:
		return "unknown", nil
	case reflect.Struct:
		if t.Name() == "" {
			body, err := g.structBody(t, "", "  ")
			if err != nil {
				return "", err
			}
			return "{\n" + body + "}", nil
		}
		return g.declare(t, g.interfaceDecl)
	}
	return "", fmt.Errorf("type %s (%s) cannot be encoded as JSON", t, t.Kind())
}

// declare names t and emits its declaration once.
func (g *generator) declare(t reflect.Type, decl func(reflect.Type, string) (string, error)) (string, error) {
	if name, ok := g.names[t]; ok {
		return name, nil
	}
	name, err := g.tsName(t)
	if err != nil {
		return "", err
	}
	g.names[t] = name
	g.byName[name] = t
	i := len(g.decls)
	g.decls = append(g.decls, "") // keep the order of discovery
	d, err := decl(t, name)
	if err != nil {
		return "", err
	}
	g.decls[i] = d
	return name, nil
}

// enumDecl declares a named string type as the union of its constants, or as
// string when the package declares none.
func (g *generator) enumDecl(t reflect.Type, name string) (string, error) {
	src, err := g.source(t.PkgPath())
	if err != nil {
		return "", err
	}
	docs := []string{src.typeDocs[t.Name()]}
	var values []string
	for _, c := range src.consts {
		if c.typeName != t.Name() {
			continue
		}
		if c.kind != constString {
			return "", fmt.Errorf("constant %s of type %s is not a string literal", c.ident, t)
		}
		values = append(values, strconv.Quote(c.value))
		if c.doc != "" && !slices.Contains(docs, c.doc) {
			docs = append(docs, c.doc)
		}
	}
	expr := "string"
	if len(values) > 0 {
		expr = strings.Join(values, " | ")
	}
	return jsDoc("", docs...) + "export type " + name + " = " + expr + ";\n", nil
}

// interfaceDecl declares a struct type as an interface.
func (g *generator) interfaceDecl(t reflect.Type, name string) (string, error) {
	src, err := g.source(t.PkgPath())
	if err != nil {
		return "", err
	}
	body, err := g.structBody(t, t.Name(), "  ")
	if err != nil {
		return "", err
	}
	return jsDoc("", src.typeDocs[t.Name()]) + "export interface " + name + " {\n" + body + "}\n", nil
}

// jsonField is one member of the JSON object of a struct.
type jsonField struct {
	name     string
	optional bool // may be absent (omitempty, omitzero)
	nullable bool // may be null (nil pointer, slice or map without omitempty)
	typ      reflect.Type
	doc      string
}

// structBody returns the members of the JSON object of t, one per line.
func (g *generator) structBody(t reflect.Type, goName, indent string) (string, error) {
	fields, err := g.jsonFields(t, goName)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range fields {
		expr, err := g.typeExpr(f.typ)
		if err != nil {
			return "", fmt.Errorf("%s.%s: %w", t, f.name, err)
		}
		if f.nullable {
			expr += " | null"
		}
		opt := ""
		if f.optional {
			opt = "?"
		}
		b.WriteString(jsDoc(indent, f.doc))
		fmt.Fprintf(&b, "%s%s%s: %s;\n", indent, tsKey(f.name), opt, expr)
	}
	return b.String(), nil
}

// jsonFields lists the fields encoding/json writes for t, in order, flattening
// embedded structs. goName names t in the Go source for doc lookups ("" for none).
func (g *generator) jsonFields(t reflect.Type, goName string) ([]jsonField, error) {
	var src *pkgSource
	if goName != "" {
		var err error
		if src, err = g.source(t.PkgPath()); err != nil {
			return nil, err
		}
	}
	var out []jsonField
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				return nil, fmt.Errorf("%s embeds the pointer %s, which tsgen does not support", t, ft)
			}
			if ft.Kind() == reflect.Struct {
				inner, err := g.jsonFields(ft, ft.Name())
				if err != nil {
					return nil, err
				}
				for _, f := range inner {
					if seen[f.name] {
						return nil, fmt.Errorf("%s: JSON field %q appears twice", t, f.name)
					}
					seen[f.name] = true
					out = append(out, f)
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := jsonField{name: name, typ: sf.Type}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty":
				f.optional = f.optional || omitsEmpty(sf.Type)
			case "omitzero":
				f.optional = true
			case "string":
				return nil, fmt.Errorf("%s.%s: the json \"string\" option is not supported", t, sf.Name)
			}
		}
		switch sf.Type.Kind() {
		case reflect.Pointer:
			f.typ = sf.Type.Elem()
			f.nullable = !f.optional
		case reflect.Slice, reflect.Map:
			f.nullable = !f.optional && sf.Type != rawMessageType
		}
		if src != nil {
			f.doc = src.fieldDocs[goName+"."+sf.Name]
		}
		if seen[f.name] {
			return nil, fmt.Errorf("%s: JSON field %q appears twice", t, f.name)
		}
		seen[f.name] = true
		out = append(out, f)
	}
	return out, nil
}

// omitsEmpty reports whether encoding/json's omitempty can leave out a value of t.
func omitsEmpty(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		return false
	case reflect.Array:
		return t.Len() == 0
	}
	return true
}

// tsKey quotes a member name when it is not a plain identifier.
func tsKey(name string) string {
	for i, r := range name {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return strconv.Quote(name)
		}
	}
	if name == "" {
		return `""`
	}
	return name
}

// jsDoc formats doc comments (paragraphs) as a JSDoc block, or "" when all are empty.
func jsDoc(indent string, paragraphs ...string) string {
	var lines []string
	for _, p := range paragraphs {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if len(lines) > 0 {
			lines = append(lines, "")
		}
		lines = append(lines, strings.Split(p, "\n")...)
	}
	if len(lines) == 0 {
		return ""
	}
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(strings.TrimRight(l, " \t"), "*/", "*\\/")
	}
	if len(lines) == 1 {
		return indent + "/** " + lines[0] + " */\n"
	}
	var b strings.Builder
	b.WriteString(indent + "/**\n")
	for _, l := range lines {
		if l == "" {
			b.WriteString(indent + " *\n")
		} else {
			b.WriteString(indent + " * " + l + "\n")
		}
	}
	b.WriteString(indent + " */\n")
	return b.String()
}

// render writes the whole file.
func (g *generator) render() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by tsgen (go run ./shared/events/tsgen) from the Go packages\n")
	b.WriteString("// shared/events and shared/tasks. DO NOT EDIT.\n")
	pkgDoc := func(t reflect.Type) string {
		s, err := g.source(t.PkgPath())
		if err != nil {
			return ""
		}
		return s.pkgDoc
	}
	if doc := strings.TrimSpace(pkgDoc(reflect.TypeFor[events.Progress]())); doc != "" {
		b.WriteString("//\n")
		for _, l := range strings.Split(doc, "\n") {
			b.WriteString(strings.TrimRight("// "+l, " ") + "\n")
		}
	}
	for _, d := range g.decls {
		b.WriteString("\n" + d)
	}

	for _, n := range numbers {
		src, err := g.source(n.pkg.PkgPath())
		if err != nil {
			return nil, err
		}
		c, ok := src.constByIdent(n.ident)
		if !ok {
			return nil, fmt.Errorf("constant %s is not declared in %s", n.ident, n.pkg.PkgPath())
		}
		b.WriteString("\n" + jsDoc("", c.doc))
		fmt.Fprintf(&b, "export const %s = %d;\n", n.ident, n.value)
	}

	evSrc, err := g.source(reflect.TypeFor[events.Progress]().PkgPath())
	if err != nil {
		return nil, err
	}
	constDoc := func(ident string) string {
		c, _ := evSrc.constByIdent(ident)
		return c.doc
	}
	b.WriteString("\n/** The event names of package events, by the names of their Go constants. */\n")
	b.WriteString("export const Events = {\n")
	for _, e := range serverEvents {
		b.WriteString(jsDoc("  ", constDoc(e.ident)))
		fmt.Fprintf(&b, "  %s: %s,\n", e.ident, strconv.Quote(e.name))
	}
	for _, e := range clientEvents {
		b.WriteString(jsDoc("  ", constDoc(e.ident)))
		fmt.Fprintf(&b, "  %s: %s,\n", e.ident, strconv.Quote(e.name))
	}
	b.WriteString("} as const;\n")

	b.WriteString("\n/** Events the server sends to browsers, in the form socket.io-client types them. */\n")
	b.WriteString("export interface ServerToClientEvents {\n")
	for _, e := range serverEvents {
		b.WriteString(jsDoc("  ", constDoc(e.ident)))
		fmt.Fprintf(&b, "  %s: (payload: %s) => void;\n", strconv.Quote(e.name), g.names[e.payload])
	}
	b.WriteString("}\n")

	b.WriteString("\n/** Events browsers send to the server, each with an acknowledgement. */\n")
	b.WriteString("export interface ClientToServerEvents {\n")
	for _, e := range clientEvents {
		b.WriteString(jsDoc("  ", constDoc(e.ident)))
		var acks []string
		for _, t := range e.acks {
			acks = append(acks, g.names[t])
		}
		fmt.Fprintf(&b, "  %s: (request: %s, ack: (reply: %s) => void) => void;\n",
			strconv.Quote(e.name), g.names[e.request], strings.Join(acks, " | "))
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}
