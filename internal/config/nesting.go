package config

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml/scanner"
	"github.com/goccy/go-yaml/token"
)

// The YAML parser's memory grows with the tokens of a file and with the square of how deeply its
// collections nest: a 200 KB line of 100,000 "[" took more than 8 GB, 20,000 "- " on one line
// 670 MB, a 1 MB file of "[1]," 690 MB. A reload reads the file as validate does, so one bad
// write could take a running gateway down. The scanner is linear (it returns every token of a
// file in one batch), so the file is measured on its tokens first:
//
//   - maxConfigBytes bounds what the scanner reads (1 MiB of "[1]," is a million tokens, refused
//     in 0.3 s at 230 MB), maxConfigTokens what reaches the parser (11,000 routes written one
//     per line in flow style are 200,000 tokens in 670 KB, and take 140 MB to load);
//   - maxFlowNesting bounds flow collections ([…] and {…}) inside each other;
//   - maxBlockColumn bounds where a block-context line, or a "- " entry, may start: a block
//     collection nested in another starts at least one column further in, so this bounds their
//     depth.
//
// Real configs nest a few levels ({targets: [{url: …}]} is three) and indent a few dozen columns.
const (
	maxConfigBytes  = 1 << 20
	maxConfigTokens = 200_000
	maxFlowNesting  = 64
	maxBlockColumn  = 256
)

// scanLimits returns where the file first passes those bounds (1-based) and which it passed, or
// where the scanner found a token that is not YAML and why (the parser would scan the whole file
// again to say the same); line 0 when it stays within them.
func scanLimits(data []byte) (line, col int, problem string) {
	var s scanner.Scanner
	s.Init(string(data))
	flow, lastLine, n := 0, 0, 0
	blockScalar := false // after | or >: its text, however indented, is no nesting
	for {
		tokens, err := s.Scan()
		var invalid *scanner.InvalidTokenError
		switch {
		case errors.As(err, &invalid) && invalid.Token != nil && invalid.Token.Position != nil:
			return invalid.Token.Position.Line, invalid.Token.Position.Column, invalid.Error()
		case err != nil: // io.EOF
			return 0, 0, ""
		}
		for _, tk := range tokens {
			pos := tk.Position
			if pos == nil {
				continue
			}
			if n++; n > maxConfigTokens {
				return pos.Line, pos.Column, fmt.Sprintf("more than %d tokens (about %d routes); split the work across gateways", maxConfigTokens, maxConfigTokens/18)
			}
			if tk.Type == token.CommentType {
				continue // a comment line may sit anywhere, and one may follow a | or >
			}
			wasBlockScalar := blockScalar
			blockScalar = tk.Type == token.LiteralType || tk.Type == token.FoldedType
			inBlock := flow == 0 // before this token opens or closes a flow collection
			switch tk.Type {
			case token.SequenceStartType, token.MappingStartType:
				if flow++; flow > maxFlowNesting {
					return pos.Line, pos.Column, fmt.Sprintf("collections ([…], {…}) nested more than %d deep", maxFlowNesting)
				}
			case token.SequenceEndType, token.MappingEndType:
				if flow > 0 {
					flow--
				}
			}
			first := pos.Line != lastLine
			lastLine = pos.Line
			if inBlock && !wasBlockScalar && (first || tk.Type == token.SequenceEntryType) && pos.Column > maxBlockColumn {
				return pos.Line, pos.Column, fmt.Sprintf("nested too deep: a line in block context starts past column %d", maxBlockColumn)
			}
		}
	}
}
