package config

import (
	"github.com/goccy/go-yaml/ast"
)

// document is one parsed YAML document with its anchors, so that problem paths can be placed on
// lines even through anchors, aliases, tags and merge keys ("<<: *defaults"). goccy's own
// YAMLPath filter (yaml.PathString + FilterFile) stops at an anchored or tagged node, which would
// send every problem under an anchor to its parent's line.
type document struct {
	body    ast.Node
	anchors map[string]ast.Node
}

// maxAliasDepth bounds alias chains so that a self-referencing document cannot loop forever.
const maxAliasDepth = 32

func newDocument(body ast.Node) *document {
	d := &document{body: body, anchors: map[string]ast.Node{}}
	if body != nil {
		ast.Walk(anchorCollector(d.anchors), body)
	}
	return d
}

type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil {
		a[an.Name.GetToken().Value] = an.Value
	}
	return a
}

// resolve looks through anchors, aliases and tags to the node that holds the value.
func (d *document) resolve(n ast.Node) ast.Node {
	for range maxAliasDepth {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil {
				return nil
			}
			n = d.anchors[v.Value.GetToken().Value]
		default:
			return n
		}
	}
	return nil
}

// entries returns the key/value pairs written in a mapping node, merge keys included.
func entries(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}

// isMergeKey reports whether an entry is "<<: ..." whose value is merged into the mapping.
func isMergeKey(mv *ast.MappingValueNode) bool {
	_, ok := mv.Key.(*ast.MergeKeyNode)
	return ok
}

// mergeSources returns the mappings a merge key's value brings in: one alias or mapping, or a
// sequence of them.
//
// A source that does not resolve (an unknown alias) is returned as written, so that the schema
// check reports it at its line and field like any other unknown alias.
func (d *document) mergeSources(v ast.Node) []ast.Node {
	orig := v
	if v = d.resolve(v); v == nil {
		return []ast.Node{orig}
	}
	if seq, ok := v.(*ast.SequenceNode); ok {
		out := make([]ast.Node, 0, len(seq.Values))
		for _, e := range seq.Values {
			if r := d.resolve(e); r != nil {
				e = r
			}
			out = append(out, e)
		}
		return out
	}
	return []ast.Node{v}
}

// keyText is the text of a mapping key as the decoder sees it (quotes removed).
func keyText(k ast.MapKeyNode) string {
	var n ast.Node = k
	if mk, ok := n.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case nil:
		return ""
	}
	return n.GetToken().Value
}

// lookupKey finds key in mapping n, looking into merged mappings when it is not written directly
// (a direct entry wins over a merged one, as in decoding).
func (d *document) lookupKey(n ast.Node, key string) *ast.MappingValueNode {
	return d.lookupKeyIn(n, key, map[ast.Node]bool{})
}

// lookupKeyIn searches each mapping once, so merges that reach one anchor several times (or
// themselves) stay linear.
func (d *document) lookupKeyIn(n ast.Node, key string, seen map[ast.Node]bool) *ast.MappingValueNode {
	n = d.resolve(n)
	es, ok := entries(n)
	if !ok || seen[n] {
		return nil
	}
	seen[n] = true
	for _, mv := range es {
		if !isMergeKey(mv) && keyText(mv.Key) == key {
			return mv
		}
	}
	for _, mv := range es {
		if isMergeKey(mv) {
			for _, src := range d.mergeSources(mv.Value) {
				if found := d.lookupKeyIn(src, key, seen); found != nil {
					return found
				}
			}
		}
	}
	return nil
}

// find returns the value node at segs, or nil when some step is absent.
func (d *document) find(segs []segment) ast.Node {
	n := d.resolve(d.body)
	for _, s := range segs {
		if n == nil {
			return nil
		}
		if s.isIdx {
			seq, ok := n.(*ast.SequenceNode)
			if !ok || s.index < 0 || s.index >= len(seq.Values) {
				return nil
			}
			n = d.resolve(seq.Values[s.index])
			continue
		}
		mv := d.lookupKey(n, s.key)
		if mv == nil {
			return nil
		}
		n = d.resolve(mv.Value)
	}
	return n
}

// position places a problem path on a line: the key of a map entry, the start of a sequence
// element, or, when the leaf is absent (a missing required field), the nearest existing parent.
func (d *document) position(path string) (line, col int) {
	return d.pos(splitPath(path))
}

func (d *document) pos(segs []segment) (int, int) {
	if len(segs) == 0 {
		return startPos(d.body)
	}
	last := segs[len(segs)-1]
	if parent := d.find(segs[:len(segs)-1]); parent != nil {
		if !last.isIdx {
			if mv := d.lookupKey(parent, last.key); mv != nil {
				return startPos(mv.Key)
			}
		} else if seq, ok := parent.(*ast.SequenceNode); ok && last.index >= 0 && last.index < len(seq.Values) {
			return startPos(seq.Values[last.index])
		}
	}
	return d.pos(segs[:len(segs)-1])
}

// startPos is where a node begins in the text: for a block mapping that is its first key, not the
// ":" token goccy records for it.
func startPos(n ast.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		return startPos(m.Values[0])
	}
	if mv, ok := n.(*ast.MappingValueNode); ok {
		return startPos(mv.Key)
	}
	if mk, ok := n.(*ast.MappingKeyNode); ok && mk.Start != nil {
		return mk.Start.Position.Line, mk.Start.Position.Column
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}
