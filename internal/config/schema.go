package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml/ast"
)

// schemaCheck walks the YAML tree alongside the Go type it decodes into and records every unknown
// key and every value of the wrong shape, each at its own line. The decoder alone stops at the
// first problem; this pass is what lets a user see all of them at once.
type schemaCheck struct {
	doc      *document
	problems []LineProblem
	seen     map[seenKey]bool
	// typeErrors is set when a value cannot decode; the decoded File is then unsound and is not
	// validated, since its problems would only echo these.
	typeErrors bool
	// checked holds the nodes already checked against a type. Aliases and merge keys reach one
	// node many times; checking it again would only repeat its problems, and a self-referencing
	// or doubly-merged anchor would otherwise loop or explode exponentially.
	checked map[checkedKey]bool
}

type checkedKey struct {
	node ast.Node
	typ  reflect.Type
}

// unsupported are sections of the target config shape (DESIGN.md) that later versions add. They
// are still rejected, with a hint that says why.
var unsupported = map[string]bool{}

type seenKey struct {
	line, col int
	msg       string
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// typeKeyedType marks unions whose one key names the type (builtin.Config).
var typeKeyedType = reflect.TypeFor[interface{ TypeKeyed() }]()

// shorthandType marks struct types that may also be written as a single scalar (see
// builtin.GlobalRef).
var shorthandType = reflect.TypeFor[interface{ ScalarShorthand() }]()

func (c *schemaCheck) add(n ast.Node, path, format string, args ...any) {
	line, col := startPos(n)
	p := LineProblem{Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)}
	// Through aliases, one anchored node is checked once per use (under several paths); the user
	// wrote it once, so it is reported once.
	k := seenKey{line, col, p.Message}
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	c.problems = append(c.problems, p)
}

func (c *schemaCheck) typeError(n ast.Node, path, format string, args ...any) {
	c.typeErrors = true
	c.add(n, path, format, args...)
}

// check verifies node n against type t at path.
func (c *schemaCheck) check(n ast.Node, t reflect.Type, path string) {
	if al, ok := n.(*ast.AliasNode); ok && c.doc.resolve(al) == nil {
		name := ""
		if al.Value != nil {
			name = al.Value.GetToken().Value
		}
		c.typeError(n, path, "unknown alias %q", name)
		return
	}
	if tag := explicitTag(n); tag != "" {
		// goccy converts a value to the tag's type without a word when it cannot ("!!int x" is
		// 0), and the errors after that name a value the file does not hold.
		c.typeError(n, path, "YAML tag %s is not supported here: write the value itself (!!str, to keep a value a string, is)", tag)
		return
	}
	n = c.doc.resolve(n)
	if n == nil || n.Type() == ast.NullType {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if c.checked == nil {
		c.checked = map[checkedKey]bool{}
	}
	k := checkedKey{n, t}
	if c.checked[k] {
		return
	}
	c.checked[k] = true
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		c.checkText(n, t, path)
		return
	}
	if isScalar(n) && reflect.PointerTo(t).Implements(shorthandType) {
		// A type with a short form (a bare name) checks its long form as a struct below.
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		c.checkStruct(n, t, path)
	case reflect.Map:
		c.checkMap(n, t, path)
	case reflect.Slice, reflect.Array:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			c.typeError(n, path, "expected a list, got %s", describe(n))
			return
		}
		for i, e := range seq.Values {
			c.check(e, t.Elem(), indexPath(path, i))
		}
	case reflect.String:
		if !isScalar(n) {
			c.typeError(n, path, "expected a string, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Type() != ast.BoolType {
			c.typeError(n, path, "expected true or false, got %s", describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.checkInt(n, t, path)
	case reflect.Float32, reflect.Float64:
		switch n.Type() {
		case ast.IntegerType, ast.FloatType:
		case ast.InfinityType, ast.NanType:
			c.typeError(n, path, "expected a finite number, got %s", describe(n))
		default:
			c.typeError(n, path, "expected a number, got %s", describe(n))
		}
	}
}

// checkText tries the value's own UnmarshalText, so a bad duration or size is reported at its line
// (the decoder's error for it carries no position).
func (c *schemaCheck) checkText(n ast.Node, t reflect.Type, path string) {
	text, ok := scalarText(n)
	if !ok {
		c.typeError(n, path, "expected a single value, got %s", describe(n))
		return
	}
	v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
	if err := v.UnmarshalText([]byte(text)); err != nil {
		c.typeError(n, path, "%v", err)
	}
}

func (c *schemaCheck) checkInt(n ast.Node, t reflect.Type, path string) {
	unsigned := t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64
	maxSigned := uint64(1)<<(t.Bits()-1) - 1
	maxUnsigned := uint64(1)<<t.Bits() - 1 // wraps to the maximum for 64 bits
	rangeText := func() string {
		if unsigned {
			return "0 to " + strconv.FormatUint(maxUnsigned, 10)
		}
		return strconv.FormatInt(-1<<(t.Bits()-1), 10) + " to " + strconv.FormatUint(maxSigned, 10)
	}
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		if s, isStr := n.(*ast.StringNode); isStr && isDigits(strings.TrimPrefix(s.Value, "-")) {
			// goccy keeps an integer too large for 64 bits as a string.
			c.typeError(n, path, "expected a whole number from %s, got %s", rangeText(), s.Value)
			return
		}
		c.typeError(n, path, "expected a whole number, got %s", describe(n))
		return
	}
	// goccy keeps non-negative integers as uint64 and negative ones as int64.
	var neg bool
	var mag uint64
	switch v := in.Value.(type) {
	case int64:
		neg, mag = v < 0, uint64(v)
		if neg {
			mag = uint64(-v) // also right for math.MinInt64, by wrap-around
		}
	case uint64:
		mag = v
	}
	var fits bool
	switch {
	case unsigned:
		fits = !neg && mag <= maxUnsigned
	case neg:
		fits = mag <= maxSigned+1
	default:
		fits = mag <= maxSigned
	}
	if !fits {
		c.typeError(n, path, "expected a whole number from %s, got %s", rangeText(), in.GetToken().Value)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (c *schemaCheck) checkStruct(n ast.Node, t reflect.Type, path string) {
	es, ok := entries(n)
	if !ok {
		c.typeError(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(t)
	if reflect.PointerTo(t).Implements(typeKeyedType) {
		// The flat shape {type: key-auth, key_names: …} is a natural guess (DESIGN.md's early
		// sketch, other gateways): answer it with one pointed message instead of one unknown
		// key per setting.
		for _, mv := range es {
			if keyText(mv.Key) == "type" {
				typ, _ := scalarText(c.doc.resolve(mv.Value))
				c.add(mv.Key, path, "name the policy type as the key, with its settings below it: {%s: {…}} instead of {type: %s, …} (types: %s)", typ, typ, strings.Join(fields.names, ", "))
				return
			}
		}
	}
	for _, mv := range es {
		if isMergeKey(mv) {
			for _, src := range c.doc.mergeSources(mv.Value) {
				c.check(src, t, path)
			}
			continue
		}
		key := keyText(mv.Key)
		f, ok := fields.byName[key]
		if !ok {
			c.add(mv.Key, keyPath(path, key), "%s", unknownKeyMessage(key, fields.names, path == "" && unsupported[key]))
			continue
		}
		c.check(mv.Value, f.typ, keyPath(path, key))
	}
}

func (c *schemaCheck) checkMap(n ast.Node, t reflect.Type, path string) {
	es, ok := entries(n)
	if !ok {
		c.typeError(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	for _, mv := range es {
		if isMergeKey(mv) {
			for _, src := range c.doc.mergeSources(mv.Value) {
				c.check(src, t, path)
			}
			continue
		}
		var kn ast.Node = mv.Key
		if mk, ok := kn.(*ast.MappingKeyNode); ok {
			kn = mk.Value
		}
		if t.Key().Kind() == reflect.String && !isScalar(c.doc.resolve(kn)) {
			c.typeError(mv.Key, path, "expected a name as key, got %s", describe(kn))
			continue
		}
		c.check(mv.Value, t.Elem(), keyPath(path, keyText(mv.Key)))
	}
}

// unknownKeyMessage says what is wrong and what is allowed, with the closest known key when it
// is close enough to be a typo.
func unknownKeyMessage(key string, known []string, notYet bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown key %q", key)
	if notYet {
		b.WriteString(": not supported in this version yet")
	} else if s := suggest(key, known); s != "" {
		fmt.Fprintf(&b, ", did you mean %q?", s)
	}
	fmt.Fprintf(&b, " (known: %s)", strings.Join(known, ", "))
	return b.String()
}

// suggest returns the known name nearest to key, ignoring case, when it is close enough to be a
// typo: the edit distance is at most 2 (or a third of the key), or one name is nearly a prefix
// of the other. It returns "" when nothing is close.
func suggest(key string, known []string) string {
	lower := strings.ToLower(key)
	best, bestD := "", math.MaxInt
	for _, k := range known {
		// A shortened or extended name ("retry" for "retries") is a likely slip too.
		if len(lower) >= 4 && (strings.HasPrefix(k, lower[:len(lower)-1]) || strings.HasPrefix(lower, k)) {
			return k
		}
		d := editDistance(lower, k)
		if d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= 2 || bestD*3 <= len(key) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes (config keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isScalar(n ast.Node) bool {
	switch n.Type() {
	case ast.StringType, ast.LiteralType, ast.IntegerType, ast.FloatType, ast.BoolType,
		ast.InfinityType, ast.NanType:
		return true
	}
	return false
}

func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	}
	if isScalar(n) {
		return n.GetToken().Value, true
	}
	return "", false
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.NullType:
		return "null"
	}
	if s, ok := scalarText(n); ok {
		return strconv.Quote(s)
	}
	return n.Type().YAMLName()
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// structFields describes how YAML keys map to one struct type's fields, as goccy decodes them.
type structFields struct {
	byName map[string]fieldInfo
	names  []string // sorted, for "known:" lists
}

type fieldInfo struct {
	index []int
	name  string
	typ   reflect.Type
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*structFields)
	}
	sf := &structFields{byName: map[string]fieldInfo{}}
	collectFields(t, nil, sf)
	for name := range sf.byName {
		sf.names = append(sf.names, name)
	}
	slices.Sort(sf.names)
	fieldCache.Store(t, sf)
	return sf
}

// collectFields mirrors goccy's field naming: the yaml tag (or json tag) name, else the
// lower-cased field name; "-" and unexported fields are skipped; ",inline" embeds a struct's keys.
func collectFields(t reflect.Type, index []int, sf *structFields) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		idx := append(slices.Clone(index), i)
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			collectFields(ft, idx, sf)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		sf.byName[name] = fieldInfo{index: idx, name: name, typ: f.Type}
	}
}

// explicitTag returns the first tag on n (through anchors) other than !!str, or "".
func explicitTag(n ast.Node) string {
	for range maxAliasDepth {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			if tag := v.Start.Value; tag != "!!str" && tag != "tag:yaml.org,2002:str" {
				return tag
			}
			n = v.Value
		default:
			return ""
		}
	}
	return ""
}
