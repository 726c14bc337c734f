package config

import (
	"fmt"
	"reflect"

	"github.com/goccy/go-yaml/ast"
)

// Alias expansion budget. A YAML alias is a reference, but what the loader makes of the document
// (the decoded File, which interpolation turns into a tree, and its validation) holds a copy of
// the anchor at every use, so a few lines of nested aliases ("billion laughs": a list of ten
// aliases of a list of ten aliases of ...) become millions of values, allocations and problem
// messages. Before decoding, the loader counts the nodes the document expands to and refuses it
// past the budget: the larger of minAliasBudget and aliasBudgetFactor times the nodes written.
//
// Without aliases a document expands to exactly the nodes written, so the budget only ever
// refuses aliasing. A million nodes is far beyond any real gateway config: a 5,000-route file is
// about 100,000 nodes, and a shared anchor (a policy list, a match block) used by every route
// adds tens of nodes per use; a million decode and validate in about a second. The relative term
// lets a file that is very large anyway use anchors as freely as a small one: the work it may
// cause stays proportional to the work of reading it.
const (
	minAliasBudget    = 1_000_000
	aliasBudgetFactor = 10
)

// aliasExpansion returns the problem at the alias that takes body's expansion past the budget
// for a document of written nodes, or nil. body is the document after flattenMerges, so that a
// merge counts for what it merges (the union of keys, not every source whole), as decoding sees
// it; merged entries are then the source's own nodes, reachable from several mappings.
//
// The count costs one visit per node: the expanded size of each node, an anchor's above all, is
// measured once and reused at every alias and every mapping that merged it.
func aliasExpansion(body ast.Node, written int) *LineProblem {
	if isNil(body) {
		return nil
	}
	c := &aliasCount{
		budget:  max(minAliasBudget, aliasBudgetFactor*written),
		written: written,
		anchors: map[string]*ast.AnchorNode{},
		size:    map[ast.Node]int{},
	}
	c.expanded(body)
	return c.over
}

// aliasCount is one pass of aliasExpansion. anchors maps each anchor name to its latest
// definition walked (an alias refers to the closest one before it), size holds the expanded size
// of every node measured, and over is set, once, where the budget is exceeded.
type aliasCount struct {
	budget, written int
	anchors         map[string]*ast.AnchorNode
	size            map[ast.Node]int
	over            *LineProblem
	// lastAlias is the alias measured last: where a crossing inside a written entry comes from.
	lastAlias *ast.AliasNode
}

// expanded returns the number of nodes n stands for with every alias replaced by its anchor's
// value. Anchors and tags are not counted themselves: an alias copies the value only. Once over
// the budget the counts are no longer exact, only larger than the budget.
func (c *aliasCount) expanded(n ast.Node) int {
	if isNil(n) {
		return 0
	}
	if s, ok := c.size[n]; ok {
		return s
	}
	c.size[n] = 1 // while n is measured: an alias inside its own anchor (a cycle) counts one
	s := 1
	switch v := n.(type) {
	case *ast.AliasNode:
		if v.Value != nil {
			if a, ok := c.anchors[v.Value.GetToken().Value]; ok {
				s = c.expanded(a.Value) // unknown aliases count one; the schema check reports them
			}
		}
		c.lastAlias = v
	case *ast.AnchorNode:
		s = c.expanded(v.Value)
		if v.Name != nil {
			c.anchors[v.Name.GetToken().Value] = v
		}
	case *ast.TagNode:
		s = c.expanded(v.Value)
	default:
		for _, child := range children(n) {
			_, repeated := c.size[child]
			s += c.expanded(child)
			if s > c.budget {
				if c.over == nil {
					c.overAt(child, repeated, n)
				}
				s = c.budget + 1 // saturate: nested multiplication must not overflow int
				break
			}
		}
	}
	c.size[n] = s
	return s
}

// overAt records the problem where adding child to parent crossed the budget: at child when it is
// an alias, at the merging mapping when child is an entry it merged (a node measured before),
// else at the last alias measured inside child.
func (c *aliasCount) overAt(child ast.Node, repeated bool, parent ast.Node) {
	at, what := child, "this value"
	al, ok := child.(*ast.AliasNode)
	switch {
	case ok:
	case repeated:
		at, what = parent, "a merge key here"
	case c.lastAlias != nil:
		al, ok = c.lastAlias, true
	}
	if ok {
		at, what = al, "an alias"
		if al.Value != nil {
			what = "alias *" + al.Value.GetToken().Value
		}
	}
	line, col := startPos(at)
	c.over = &LineProblem{Line: line, Column: col, Message: fmt.Sprintf(
		"%s takes the document past %d values once its aliases are expanded (it has %d written): every use of an alias copies its anchor, so aliases of anchors that use aliases multiply; write repeated parts out or nest fewer aliases",
		what, c.budget, c.written)}
}

// children lists n's child nodes in document order. Comments are not part of the value, and an
// alias has none: what it refers to is its anchor's.
func children(n ast.Node) []ast.Node {
	switch v := n.(type) {
	case *ast.MappingNode:
		out := make([]ast.Node, len(v.Values))
		for i, e := range v.Values {
			out[i] = e
		}
		return out
	case *ast.MappingValueNode:
		return []ast.Node{v.Key, v.Value}
	case *ast.MappingKeyNode:
		return []ast.Node{v.Value}
	case *ast.SequenceNode:
		return v.Values
	case *ast.TagNode:
		return []ast.Node{v.Value}
	case *ast.AnchorNode:
		return []ast.Node{v.Value}
	case *ast.DocumentNode:
		return []ast.Node{v.Body}
	}
	return nil
}

// countWritten counts the nodes written in n, an alias as one.
func countWritten(n ast.Node) int {
	if isNil(n) {
		return 0
	}
	c := 1
	for _, k := range children(n) {
		c += countWritten(k)
	}
	return c
}

// isNil reports whether n is nil or a nil pointer in the interface (a field goccy left unset).
func isNil(n ast.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
