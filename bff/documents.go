package bff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// document is one file of schema/operations/<bff>/: its exact text (what runs and what is
// hashed), and its parsed, schema-validated form (what REST routes and OpenAPI read).
type document struct {
	file string
	text string
	hash string // hex sha256 of text
	doc  *ast.QueryDocument
}

// documentSet holds a BFF's stored operations. Operation names are unique across its files, so a
// name finds exactly one document; each file stands alone (fragments are not shared across files)
// because it is sent and hashed as one document.
type documentSet struct {
	byName map[string]*document
	byHash map[string]*document
}

// loadDocuments reads dir/*.graphql from fsys and validates every file against schema. A missing
// dir is an empty set; New decides whether the profile needs operations.
func loadDocuments(fsys fs.FS, dir string, schema *ast.Schema) (*documentSet, error) {
	set := &documentSet{byName: map[string]*document{}, byHash: map[string]*document{}}
	if fsys == nil {
		return set, nil
	}
	files, err := fs.Glob(fsys, path.Join(dir, "*.graphql"))
	if err != nil {
		return nil, fmt.Errorf("listing operations: %w", err)
	}
	slices.Sort(files)
	var errs []error
	for _, file := range files {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", file, err))
			continue
		}
		d, err := parseDocument(file, string(b), schema)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, op := range d.doc.Operations {
			if prev, dup := set.byName[op.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: operation %s is already defined in %s", file, op.Name, prev.file))
				continue
			}
			set.byName[op.Name] = d
		}
		set.byHash[d.hash] = d
	}
	return set, errors.Join(errs...)
}

func parseDocument(file, text string, schema *ast.Schema) (*document, error) {
	doc, perr := parser.ParseQuery(&ast.Source{Name: file, Input: text})
	if perr != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, perr)
	}
	if len(doc.Operations) == 0 {
		return nil, fmt.Errorf("%s: no operation (each file holds named operations)", file)
	}
	for _, op := range doc.Operations {
		if op.Name == "" {
			return nil, fmt.Errorf("%s:%d: anonymous operation; stored operations need a name", file, op.Position.Line)
		}
	}
	if list := validator.ValidateWithRules(schema, doc, rules.NewDefaultRules()); len(list) > 0 {
		msgs := make([]string, len(list))
		for i, e := range list {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("%s does not validate against the schema: %s", file, strings.Join(msgs, "; "))
	}
	sum := sha256.Sum256([]byte(text))
	return &document{file: file, text: text, hash: hex.EncodeToString(sum[:]), doc: doc}, nil
}

// operation returns the named operation's definition and its document.
func (s *documentSet) operation(name string) (*ast.OperationDefinition, *document) {
	d := s.byName[name]
	if d == nil {
		return nil, nil
	}
	return d.doc.Operations.ForName(name), d
}

func (s *documentSet) names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Error codes of document resolution.
const (
	codePersistedQueryNotFound     = "PERSISTED_QUERY_NOT_FOUND"
	codePersistedQueryRequired     = "PERSISTED_QUERY_REQUIRED"
	codePersistedQueryNotSupported = "PERSISTED_QUERY_NOT_SUPPORTED"
	codeBadRequest                 = "BAD_REQUEST"
)

type documentIDKey struct{}

// withDocumentID carries a request's documentId (GraphQL-over-HTTP persisted documents) to the
// document resolver; gqlgen's RawParams has no field for it.
func withDocumentID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, documentIDKey{}, id)
}

func documentIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(documentIDKey{}).(string)
	return id
}

// storedDocuments is the gqlgen extension that resolves references to stored operations into their
// text, and (with trustedOnly) refuses everything else. It runs before APQ, so a hash of a stored
// document never needs registering.
//
// A request may reference a stored document by documentId ("sha256:<hex>" or "<hex>"), by
// extensions.persistedQuery.sha256Hash, or by operationName alone with no query. With trustedOnly
// a request that sends text is accepted only when the text is byte for byte a stored document.
type storedDocuments struct {
	docs        *documentSet
	trustedOnly bool
	apq         bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = storedDocuments{}

// ExtensionName names the extension in gqlgen's stats.
func (storedDocuments) ExtensionName() string { return "PorticoStoredDocuments" }

// Validate accepts any schema: documents were validated when loaded.
func (storedDocuments) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters fills params.Query from the stored document the request names.
func (s storedDocuments) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.OperationName != "" && !isGraphQLName(params.OperationName) {
		// Nothing can be named by it; refused here, it is never quoted back in an error.
		return codedError(codeBadRequest, "operationName must be a GraphQL name (letters, digits and _, not starting with a digit)")
	}
	if id := documentIDFrom(ctx); id != "" {
		d := s.docs.byHash[strings.ToLower(strings.TrimPrefix(id, "sha256:"))] // hex in either case
		switch {
		case d == nil:
			return codedError(codePersistedQueryNotFound, "no stored document has id %s", quoteClient(id))
		case params.Query != "" && params.Query != d.text:
			return codedError(codeBadRequest, "documentId and query name different documents; send one of them")
		}
		params.Query = d.text
		return nil
	}
	if hash, present, err := persistedQueryHash(params); err != nil {
		return err
	} else if present {
		if d := s.docs.byHash[hash]; d != nil {
			// A query beside the hash must be that document: otherwise the hash would admit any
			// text on an endpoint that runs stored operations only.
			if params.Query != "" && params.Query != d.text {
				return codedError(codeBadRequest, "the persisted query hash and the query name different documents; send one of them")
			}
			params.Query = d.text
			if !s.apq {
				// Nothing else reads the extension; drop it so it cannot be mistaken for APQ.
				delete(params.Extensions, "persistedQuery")
			}
			return nil
		}
		if !s.apq {
			switch {
			case s.trustedOnly && params.Query != "":
				return codedError(codePersistedQueryRequired, "only stored operations may run on this endpoint")
			case s.trustedOnly:
				return codedError(codePersistedQueryNotFound, "PersistedQueryNotFound")
			default:
				return codedError(codePersistedQueryNotSupported, "PersistedQueryNotSupported")
			}
		}
		return nil // APQ handles it
	}
	if params.Query == "" && params.OperationName != "" {
		op, d := s.docs.operation(params.OperationName)
		if op == nil {
			return codedError(codePersistedQueryNotFound, "no stored operation is named %s", quoteClient(params.OperationName))
		}
		params.Query = d.text
		return nil
	}
	if s.trustedOnly {
		if params.Query == "" {
			return codedError(codeBadRequest, "missing operation: send operationName, documentId or a persisted query hash")
		}
		sum := sha256.Sum256([]byte(params.Query))
		if s.docs.byHash[hex.EncodeToString(sum[:])] == nil {
			return codedError(codePersistedQueryRequired, "only stored operations may run on this endpoint; reference one by operationName or hash")
		}
	}
	return nil
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// persistedQueryHash reads extensions.persistedQuery.sha256Hash, checking the protocol version.
func persistedQueryHash(params *graphql.RawParams) (hash string, present bool, err *gqlerror.Error) {
	raw, ok := params.Extensions["persistedQuery"]
	if !ok || raw == nil {
		return "", false, nil
	}
	pq, ok := raw.(map[string]any)
	if !ok {
		return "", true, codedError(codeBadRequest, "extensions.persistedQuery must be an object")
	}
	v, given := pq["sha256Hash"]
	hash, _ = v.(string)
	switch {
	case !given || v == nil || hash == "" && isString(v):
		return "", true, codedError(codeBadRequest, "extensions.persistedQuery.sha256Hash is missing")
	case hash == "":
		return "", true, codedError(codeBadRequest, "extensions.persistedQuery.sha256Hash must be a string of 64 hexadecimal digits")
	}
	if !isVersionOne(pq["version"]) {
		// The value is not printed: it may be any JSON, of any size.
		return "", true, codedError(codeBadRequest, "unsupported persisted query version (supported: 1)")
	}
	if !isSHA256Hex(hash) {
		// Not found would invite the client to send the document with a hash that can never
		// be its own; the hash is not printed, it may be of any size.
		return "", true, codedError(codeBadRequest, "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits")
	}
	// Hex digits in either case name the same hash; stored and computed hashes are lower case.
	return strings.ToLower(hash), true, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isVersionOne reports whether a persistedQuery.version is 1: a JSON number, as Apollo's clients
// send it, or the string "1", which Portico has always accepted.
func isVersionOne(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return x == "1"
	case float64:
		return x == 1
	case int:
		return x == 1
	case int64:
		return x == 1
	case string:
		return x == "1"
	}
	return false
}

// codedError is a request error with extensions.code set, which decides its HTTP status.
func codedError(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}
