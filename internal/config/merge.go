package config

import (
	"github.com/goccy/go-yaml/ast"
)

// flattenMerges rewrites every mapping with merge keys ("<<: *base", "<<: [*a, *b]") into the
// mapping they mean, before the decoder sees the document: the entries written directly, then
// each merged entry whose key is not already there, the first source winning (the YAML merge
// key rules, which document.lookupKeyIn follows for problem positions too). goccy's decoder
// gets three things wrong that this avoids: an entry overriding a merged one is a "duplicate
// key", a list of sources is "sequence was used where mapping is expected", and every use of an
// anchor that merges anchors is expanded again, so 25 lines that each merge the previous anchor
// twice take 2^25 steps. Here each mapping is flattened once, in place: merged entries are the
// source's own nodes, so their lines stay where the user wrote them.
//
// It returns the merge entry of a mapping that merges itself (an anchor used inside its own
// definition, which YAML does not allow), or nil.
func (d *document) flattenMerges() *ast.MappingValueNode {
	if d.body == nil {
		return nil
	}
	f := flattening{d: d, done: map[ast.Node]ast.Node{}, active: map[ast.Node]bool{}}
	d.body = f.flatten(d.body)
	return f.cycle
}

// flattening is one pass of flattenMerges: done maps each node already flattened to its result,
// so anchors reached through many aliases are done once; active holds the nodes being flattened.
type flattening struct {
	d      *document
	done   map[ast.Node]ast.Node
	active map[ast.Node]bool
	cycle  *ast.MappingValueNode
}

// flatten returns n with its merges flattened.
func (f *flattening) flatten(n ast.Node) ast.Node {
	if r, ok := f.done[n]; ok {
		return r
	}
	f.done[n] = n
	f.active[n] = true
	defer delete(f.active, n)
	d := f.d
	var out ast.Node = n
	switch v := n.(type) {
	case *ast.AnchorNode:
		v.Value = f.flatten(v.Value)
		if v.Name != nil {
			d.anchors[v.Name.GetToken().Value] = v.Value
		}
	case *ast.TagNode:
		v.Value = f.flatten(v.Value)
	case *ast.SequenceNode:
		for i, e := range v.Values {
			v.Values[i] = f.flatten(e)
		}
	case *ast.MappingValueNode:
		if isMergeKey(v) {
			out = f.merged(v, []*ast.MappingValueNode{v})
		} else {
			v.Value = f.flatten(v.Value)
		}
	case *ast.MappingNode:
		if m := f.merged(v, v.Values); m != nil {
			v.Values = m.Values
		}
	}
	f.done[n] = out
	return out
}

// merged flattens the entries of one mapping and returns the mapping they make: nil when none
// is a merge key (the values are flattened in place either way).
func (f *flattening) merged(at ast.Node, es []*ast.MappingValueNode) *ast.MappingNode {
	d := f.d
	var direct []*ast.MappingValueNode
	var merges []*ast.MappingValueNode
	for _, mv := range es {
		if isMergeKey(mv) {
			merges = append(merges, mv)
			continue
		}
		mv.Value = f.flatten(mv.Value)
		direct = append(direct, mv)
	}
	if len(merges) == 0 {
		return nil
	}
	have := make(map[string]bool, len(direct))
	for _, mv := range direct {
		have[keyText(mv.Key)] = true
	}
	values := direct
	for _, mv := range merges {
		for _, src := range d.mergeSources(mv.Value) {
			if f.active[src] {
				f.cycle = mv
				continue
			}
			src = d.resolve(f.flatten(src))
			ses, ok := entries(src)
			if !ok {
				continue
			}
			for _, e := range ses {
				if k := keyText(e.Key); !isMergeKey(e) && !have[k] {
					have[k] = true
					values = append(values, e)
				}
			}
		}
	}
	return ast.Mapping(at.GetToken(), false, values...)
}
