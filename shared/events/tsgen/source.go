package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// constKind tells string constants from the others.
type constKind int

const (
	constOther constKind = iota
	constString
)

// constDecl is one constant of a package, as written in its source.
type constDecl struct {
	ident    string
	typeName string // explicit type ("State"), "" when untyped
	kind     constKind
	value    string // the unquoted value of a string literal
	doc      string // its own doc comment, else the doc of its group
}

// pkgSource is what tsgen reads from a package's Go source.
type pkgSource struct {
	pkgDoc    string
	typeDocs  map[string]string // by type name
	fieldDocs map[string]string // by "Type.Field"
	consts    []constDecl       // in source order (files sorted by name)
}

func (s *pkgSource) constByIdent(ident string) (constDecl, bool) {
	for _, c := range s.consts {
		if c.ident == ident {
			return c, true
		}
	}
	return constDecl{}, false
}

// parsePackage reads the non-test Go files of dir.
func parsePackage(dir string) (*pkgSource, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	s := &pkgSource{typeDocs: map[string]string{}, fieldDocs: map[string]string{}}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Doc != nil && s.pkgDoc == "" {
			s.pkgDoc = f.Doc.Text()
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			switch gd.Tok {
			case token.TYPE:
				s.addTypes(gd)
			case token.CONST:
				s.addConsts(gd)
			}
		}
	}
	return s, nil
}

func (s *pkgSource) addTypes(gd *ast.GenDecl) {
	for _, spec := range gd.Specs {
		ts := spec.(*ast.TypeSpec)
		doc := text(ts.Doc)
		if doc == "" && len(gd.Specs) == 1 {
			doc = text(gd.Doc)
		}
		s.typeDocs[ts.Name.Name] = doc
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			continue
		}
		for _, f := range st.Fields.List {
			fdoc := text(f.Doc)
			if fdoc == "" {
				fdoc = text(f.Comment)
			}
			for _, n := range f.Names {
				s.fieldDocs[ts.Name.Name+"."+n.Name] = fdoc
			}
		}
	}
}

func (s *pkgSource) addConsts(gd *ast.GenDecl) {
	groupDoc := text(gd.Doc)
	for _, spec := range gd.Specs {
		vs := spec.(*ast.ValueSpec)
		typeName := ""
		if id, ok := vs.Type.(*ast.Ident); ok {
			typeName = id.Name
		}
		doc := text(vs.Doc)
		if doc == "" {
			doc = text(vs.Comment)
		}
		if doc == "" {
			doc = groupDoc
		}
		for i, n := range vs.Names {
			c := constDecl{ident: n.Name, typeName: typeName, doc: doc}
			if i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, err := strconv.Unquote(lit.Value); err == nil {
						c.kind, c.value = constString, v
					}
				}
			}
			s.consts = append(s.consts, c)
		}
	}
}

func text(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.TrimSpace(cg.Text())
}
