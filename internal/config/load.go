package config

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/portico-gw/portico/internal/confval"
)

// Load reads, decodes and validates the config file at path. It returns the File with Path set,
// or an *Error listing every problem with its line (an I/O failure is a plain error).
//
// Relative file paths in the config (listener certificates, keys and client CAs, upstream TLS
// files, the access log file) are taken relative to the directory of the config file, so a
// config and its certificates can move together; Load rewrites them to joined paths.
//
// See Parse for the rules of decoding and interpolation.
func Load(path string) (*File, error) {
	data, err := confval.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	f, err := parse(data, path, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	f.Path = path
	return f, nil
}

// Parse decodes and validates a config from memory; name is used in error messages, and relative
// file paths stay relative to the working directory. The error, if any, is an *Error.
//
// Decoding is strict: an unknown key anywhere is a problem (with the closest known key when it
// looks like a typo), and so is a value of the wrong type. Every problem is reported, not the
// first only.
//
// String values (plain strings, lists of strings, values of string maps such as headers, never
// keys, durations, sizes, numbers or booleans) are interpolated from the environment:
//
//   - ${VAR} is the variable's value; an unset variable is a problem at that field. A variable set
//     to the empty string gives the empty string.
//   - ${VAR:-default} gives the default when VAR is unset or empty, as in the shell; the default
//     cannot contain "}".
//   - $${ is a literal "${"; a "$" not followed by "{" is literal too.
//
// Values that took text from the environment are hidden by Redacted.
func Parse(data []byte, name string) (*File, error) {
	return parse(data, name, "")
}

// errEmpty is the problem of a file with nothing in it but whitespace, comments and document
// markers. Such a file used to load as a valid config without routes, so a reload that caught a
// file truncated by its writer, or a template that rendered nothing, dropped every route.
const errEmpty = "config file is empty (write {} to run on the defaults)"

func parse(data []byte, name, baseDir string) (*File, error) {
	// Editors on Windows save UTF-8 with a byte order mark; goccy keeps it as part of the first
	// key, which was then reported as the unknown key "\ufefflisten".
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if len(data) > maxConfigBytes {
		return nil, &Error{File: name, Problems: []LineProblem{{Message: fmt.Sprintf("config file is %d bytes; the limit is %d MiB", len(data), maxConfigBytes>>20)}}}
	}
	if line, col, problem := scanLimits(data); line > 0 {
		return nil, &Error{File: name, Problems: []LineProblem{{Line: line, Column: col, Message: "invalid YAML: " + problem}}}
	}
	astFile, err := parser.ParseBytes(data, 0)
	if err != nil {
		p := decodeProblem(err)
		p.Message = "invalid YAML: " + p.Message
		return nil, &Error{File: name, Problems: []LineProblem{p}}
	}
	var bodies []*document
	empty := true
	for _, d := range astFile.Docs {
		// A document of only "~" or a directive ("%YAML 1.2") holds no config. A "~" is written
		// on purpose, unlike an empty file, so it is not refused as empty.
		if d == nil || d.Body == nil || d.Body.Type() == ast.DirectiveType {
			continue
		}
		empty = false
		if d.Body.Type() == ast.NullType {
			continue
		}
		bodies = append(bodies, newDocument(d.Body))
	}
	if empty {
		return nil, &Error{File: name, Problems: []LineProblem{{Message: errEmpty}}}
	}
	if len(bodies) > 1 {
		line, col := startPos(bodies[1].body)
		return nil, &Error{File: name, Problems: []LineProblem{{Line: line, Column: col,
			Message: "expected one YAML document, found several (remove the \"---\" separators)"}}}
	}
	doc := newDocument(nil)
	if len(bodies) == 1 {
		doc = bodies[0]
	}
	written := countWritten(doc.body) // before flattenMerges shares nodes between mappings

	f := &File{}
	check := &schemaCheck{doc: doc, seen: map[seenKey]bool{}}
	if doc.body != nil {
		check.check(doc.body, reflect.TypeFor[File](), "")
	}
	problems := check.problems
	if doc.body != nil && !check.typeErrors {
		// Unknown keys are already reported; strict decoding is only a safety net for shapes the
		// schema check does not know, so it is on only when that check found nothing.
		var opts []yaml.DecodeOption
		if len(problems) == 0 {
			opts = append(opts, yaml.DisallowUnknownField())
		}
		// Decode the document that was checked (a leading "~" document would be the first one),
		// its merge keys resolved first (merge.go).
		if mv := doc.flattenMerges(); mv != nil {
			line, col := startPos(mv.Value)
			problems = append(problems, LineProblem{Line: line, Column: col,
				Message: "a merge key merges the mapping it is part of; an anchor cannot be used inside its own definition"})
			check.typeErrors = true
		} else if p := aliasExpansion(doc.body, written); p != nil {
			// Before decoding, interpolation and validation copy every alias's expansion.
			return nil, &Error{File: name, Problems: []LineProblem{*p}}
		} else if err := yaml.NodeToValue(doc.body, f, opts...); err != nil {
			problems = appendUnlessLine(problems, decodeProblem(err))
			check.typeErrors = true
		}
	}
	if !check.typeErrors {
		var ps confval.Problems
		f.interpolated = interpolate(f, &ps)
		if baseDir != "" {
			f.resolvePaths(baseDir)
		}
		f.visitInputs(func(p *string) {
			if *p != "" {
				f.inputs = append(f.inputs, *p)
			}
		})
		slices.Sort(f.inputs)
		f.inputs = slices.Compact(f.inputs)
		// A value that could not be interpolated still holds its "${...}"; its validation
		// problems would only repeat the interpolation problem.
		failed := map[string]bool{}
		for _, p := range ps {
			failed[p.Path] = true
		}
		for _, p := range f.validate() {
			if !failed[p.Path] {
				ps = append(ps, p)
			}
		}
		if f.Listen == "" && doc.find(splitPath("listen")) != nil && !failed["listen"] {
			// Written but empty, often a ${VAR} set to "": the default would listen on every
			// interface, which the file did not ask for.
			ps.Addf("listen", "listen is empty (remove it for the default %s)", DefaultListen)
		}
		for _, p := range ps {
			line, col := doc.position(p.Path)
			msg := p.Message
			if f.interpolated[p.Path] {
				msg = doc.redactEnv(p.Path, msg)
			}
			problems = append(problems, LineProblem{Line: line, Column: col, Path: p.Path, Message: msg})
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &Error{File: name, Problems: problems}
	}
	return f, nil
}

// decodeProblem places a goccy error on its line; its message already says what is wrong.
func decodeProblem(err error) LineProblem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := LineProblem{Message: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Column = tk.Position.Line, tk.Position.Column
		}
		return p
	}
	return LineProblem{Message: err.Error()}
}

// appendUnlessLine adds p unless a problem is already reported on its line: the decoder stops at
// the first value it cannot take, which the schema check has usually described better.
func appendUnlessLine(ps []LineProblem, p LineProblem) []LineProblem {
	for _, q := range ps {
		if p.Line != 0 && q.Line == p.Line {
			return ps
		}
	}
	return append(ps, p)
}

// resolvePaths makes relative file paths relative to dir (the config file's directory).
func (f *File) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	f.visitInputs(abs)
	if o := f.AccessLog.Output; o != "" && o != "stdout" && o != "stderr" {
		abs(&f.AccessLog.Output)
	}
}

// visitInputs calls visit with every path of a file the config reads when it is applied:
// certificates, keys and CA bundles, consumers' key files, policies' PEM files. visit may change
// the path; changes are kept (an upstream's TLS settings are copied first, since YAML aliases
// share them). Only while the File is being built: it writes to the File's maps.
func (f *File) visitInputs(visit func(*string)) {
	for i := range f.Listeners {
		if t := f.Listeners[i].TLS; t != nil {
			for j := range t.Certificates {
				visit(&t.Certificates[j].Cert)
				visit(&t.Certificates[j].Key)
			}
			visit(&t.ClientCA)
		}
	}
	for name, u := range f.Upstreams {
		if u.TLS != nil {
			t := *u.TLS
			visit(&t.CAFile)
			visit(&t.CertFile)
			visit(&t.KeyFile)
			u.TLS = &t
			f.Upstreams[name] = u
		}
	}
	for i := range f.Consumers {
		visit(&f.Consumers[i].KeysFile)
	}
	for name, c := range f.Policies {
		// Policy types that read files say so by implementing PathResolver.
		if r, ok := c.Settings().(PathResolver); ok {
			r.ResolvePaths(visit)
			f.Policies[name] = c
		}
	}
}

// InputFiles lists the files the config reads when it is applied (see visitInputs), each once,
// sorted. Their content is part of what a reload builds, so the config watcher watches them as it
// watches the file. The access log is written, not read, and is not one of them.
func (f *File) InputFiles() []string {
	return slices.Clone(f.inputs)
}

// PathResolver is implemented by policy settings that name files (PEM keys, for example), so
// that those paths are taken relative to the config file like every other path.
type PathResolver interface {
	ResolvePaths(abs func(*string))
}
