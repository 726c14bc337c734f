// Package httpfield reads HTTP fields whose value is a comma-separated list (RFC 9110 §5.6.1):
// Vary, Connection, Upgrade. Several packages judge the same lists, and must judge them alike.
package httpfield

import "strings"

// ListContains reports whether the field lines (all lines of one field) name token, compared
// case-insensitively, whitespace around each element ignored.
func ListContains(lines []string, token string) bool {
	for _, line := range lines {
		for tok := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}
