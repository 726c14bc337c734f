package config

import (
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// exampleExempt are fields the example cannot show together with the ones it does.
var exampleExempt = map[string]bool{
	"listen": true, // the example uses listeners; the two are exclusive
}

// unusedFields lists the schema fields (as "upstreams.*.targets[].url") that file never sets.
func unusedFields(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	af, err := parser.ParseBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	doc := newDocument(af.Docs[0].Body)
	seen := map[string]bool{}
	markSeen(doc, doc.body, reflect.TypeFor[File](), "", seen)
	var all, missing []string
	allFields(reflect.TypeFor[File](), "", &all)
	for _, p := range all {
		if !seen[p] && !exampleExempt[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

func join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

func markSeen(doc *document, n ast.Node, t reflect.Type, path string, seen map[string]bool) {
	if n = doc.resolve(n); n == nil {
		return
	}
	seen[path] = true
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		es, _ := entries(n)
		for _, mv := range es {
			if f, ok := fieldsOf(t).byName[keyText(mv.Key)]; ok {
				markSeen(doc, mv.Value, f.typ, join(path, f.name), seen)
			}
		}
	case reflect.Map:
		es, _ := entries(n)
		for _, mv := range es {
			markSeen(doc, mv.Value, t.Elem(), join(path, "*"), seen)
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for _, e := range seq.Values {
				markSeen(doc, e, t.Elem(), path+"[]", seen)
			}
		}
	}
}

func allFields(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		*out = append(*out, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		fs := fieldsOf(t)
		for _, name := range fs.names {
			allFields(fs.byName[name].typ, join(path, name), out)
		}
	case reflect.Map:
		allFields(t.Elem(), join(path, "*"), out)
	case reflect.Slice:
		allFields(t.Elem(), path+"[]", out)
	default:
		*out = append(*out, path)
	}
	slices.Sort(*out)
}
