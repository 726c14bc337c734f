// Package schema holds Portico's GraphQL SDL (the source of truth that `make generate` turns into
// resolvers/exec and resolvers/model) and the stored operations in operations/<bff>/, which REST
// routes and trusted documents run. Only the operations are embedded: the SDL reaches the binary
// through the generated code.
package schema

import (
	"embed"
	"io/fs"
)

//go:embed operations
var operations embed.FS

// Operations returns the stored operations with one directory per BFF at the root
// ("web/Dashboard.graphql"), as bff.Deps.Operations expects.
func Operations() fs.FS {
	sub, err := fs.Sub(operations, "operations")
	if err != nil {
		panic(err) // the directory is embedded above, so this cannot happen
	}
	return sub
}
