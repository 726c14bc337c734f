package config

import (
	"fmt"

	"github.com/goccy/go-yaml/scanner"
	"github.com/goccy/go-yaml/token"
)

// The YAML parser's memory grows with the tokens of a file and with the square of how deeply its
// collections nest: a 200 KB line of 100,000 "[" took more than 8 GB, 20,000 "- " on one line
// 670 MB, a 1 MB file of "[1]," 690 MB. A reload reads the file as validate does, so one bad
// write could take a running gateway down. The scanner is linear and can stop early, so the file
// is measured on its tokens first:
//
//   - maxConfigBytes and maxConfigTokens bound its size (11,000 routes written one per line in
//     flow style are 200,000 tokens, and took 140 MB to load);
//   - maxFlowNesting bounds flow collections ([…] and {…}) inside each other;
//   - maxBlockColumn bounds where a block-context line, or a "- " entry, may start: a block
//     collection nested in another starts at least one column further in, so this bounds their
//     depth.
//
// Real configs nest a few levels ({targets: [{url: …}]} is three) and indent a few dozen columns.
const (
	maxConfigBytes  = 4 << 20
	maxConfigTokens = 200_000
	maxFlowNesting  = 64
	maxBlockColumn  = 256
)

// scanLimits returns where the file first passes those bounds (1-based) and which it passed;
// line 0 when it stays within them. A scanner error is left for the parser to report.
func scanLimits(data []byte) (line, col int, problem string) {
	var s scanner.Scanner
	s.Init(string(data))
	flow, lastLine, n := 0, 0, 0
	blockScalar := false // after | or >: its text, however indented, is no nesting
	for {
		tokens, err := s.Scan()
		if err != nil { // io.EOF, or what the parser will report with its own words
			return 0, 0, ""
		}
		for _, tk := range tokens {
			if n++; n > maxConfigTokens {
				return tk.Position.Line, tk.Position.Column, fmt.Sprintf("more than %d tokens (about %d routes); split the work across gateways", maxConfigTokens, maxConfigTokens/18)
			}
			pos := tk.Position
			if pos == nil || tk.Type == token.CommentType {
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
				return pos.Line, pos.Column, fmt.Sprintf("nested too deep: a block collection starts past column %d", maxBlockColumn)
			}
		}
	}
}
