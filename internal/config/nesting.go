package config

import (
	"fmt"

	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
)

// maxConfigBytes bounds a config file. The YAML parser's memory grows faster than the file: a
// 50 MB file took 1.5 GB to refuse. A config of 50,000 routes is about 3 MB.
const maxConfigBytes = 8 << 20

// The YAML parser's memory grows with the square of how deep collections nest: a 200 KB line of
// 100,000 "[" took more than 8 GB, and 20,000 "- " on one line (sequences in sequences) 670 MB.
// A reload reads the file as validate does, so one bad write could take a running gateway down.
// Its lexer is linear, so the depth is measured on its tokens first:
//
//   - maxFlowNesting bounds flow collections ([…] and {…}) inside each other;
//   - maxBlockColumn bounds where a block-context line, or a "- " entry, may start: a block
//     collection nested in another starts at least one column further in, so this bounds their
//     depth.
//
// Real configs nest a few levels ({targets: [{url: …}]} is three) and indent a few dozen columns.
const (
	maxFlowNesting = 64
	maxBlockColumn = 256
)

// tooDeep returns where the first collection nested past those bounds starts (1-based) and which
// bound it passed; line 0 when there is none.
func tooDeep(data []byte) (line, col int, problem string) {
	flow, lastLine := 0, 0
	prev := token.UnknownType
	for _, tk := range lexer.Tokenize(string(data)) {
		pos := tk.Position
		if pos == nil {
			continue
		}
		blockScalar := prev == token.LiteralType || prev == token.FoldedType // its text, however indented
		prev = tk.Type
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
		if !blockScalar && (flow == 0 || tk.Type == token.SequenceStartType || tk.Type == token.MappingStartType) {
			// A line's first token, or a "- " entry, in block context.
			first := pos.Line != lastLine
			if (first || tk.Type == token.SequenceEntryType) && pos.Column > maxBlockColumn {
				return pos.Line, pos.Column, fmt.Sprintf("nested too deep: a block collection starts past column %d", maxBlockColumn)
			}
		}
		lastLine = pos.Line
	}
	return 0, 0, ""
}
