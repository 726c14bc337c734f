package bff

import (
	"fmt"
	"math"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// maxRequestErrors bounds the errors one rejected request reports. Validation reports every
// pair of conflicting fields: `{ user(id:"0"){id} user(id:"1"){id} … }` at the document size
// limit made 1.4 million errors, a 371 MB answer and 4.7 GB of allocations from one request.
// A client fixing its document needs the first few.
const maxRequestErrors = 100

// cappedRules returns gqlparser's default validation rules plus numericLiterals, keeping at most
// maxRequestErrors errors per document between them: every rule still runs (the token limit
// bounds its work), but what they would report past that is counted, not allocated and kept, and
// one last error says how many more there were. gqlgen asks for a fresh set for every document it
// validates and then edits it, so the function builds one each time; parsed documents are cached,
// so that is once per new document text.
//
// Without suggest, the rules that answer "Did you mean …?" are their variants that do not: with
// introspection off the hints would describe the schema it hides. gqlgen's own switch
// (SetDisableSuggestion) swaps only two of the five, and adds them uncapped; it adds a rule only
// under a name the set lacks, so the capped ones here stay.
func cappedRules(suggest bool) func() *rules.Rules {
	return func() *rules.Rules {
		capped := rules.NewRules()
		c := &errorCap{}
		for name, rule := range rules.NewDefaultRules().GetInner() {
			if alt, ok := withoutSuggestions[name]; ok && !suggest {
				name, rule = alt.Name, alt.RuleFunc
			}
			capped.AddRule(name, c.rule(rule))
		}
		capped.AddRule(numericLiteralsRule, c.rule(numericLiterals))
		return capped
	}
}

// withoutSuggestions maps the default rules that suggest names to their variants that do not.
var withoutSuggestions = map[string]core.Rule{
	rules.FieldsOnCorrectTypeRule.Name: rules.FieldsOnCorrectTypeRuleWithoutSuggestions,
	rules.KnownArgumentNamesRule.Name:  rules.KnownArgumentNamesRuleWithoutSuggestions,
	rules.KnownTypeNamesRule.Name:      rules.KnownTypeNamesRuleWithoutSuggestions,
	rules.ScalarLeafsRule.Name:         rules.ScalarLeafsRuleWithoutSuggestions,
	rules.ValuesOfCorrectTypeRule.Name: rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
}

// omittedRule names the error that counts what a capped document's rules did not report, so that
// capErrors leaves it alone.
const omittedRule = "PorticoOmittedErrors"

// errorCap counts the errors of one document's rules.
type errorCap struct {
	n       int
	omitted *gqlerror.Error
}

func (c *errorCap) rule(rule core.RuleFunc) core.RuleFunc {
	return func(observers *core.Events, addError core.AddErrFunc) {
		rule(observers, func(options ...core.ErrorOption) {
			c.n++
			switch {
			case c.n <= maxRequestErrors:
				addError(options...)
			case c.omitted == nil:
				// The validator builds the error from the options; this one keeps a hold on it to
				// update the count as more come.
				addError(func(e *gqlerror.Error) { e.Rule, c.omitted = omittedRule, e })
				fallthrough
			default:
				c.omitted.Message = omittedMessage(c.n - maxRequestErrors)
			}
		})
	}
}

func omittedMessage(n int) string {
	if n == 1 {
		return "1 more error omitted"
	}
	return fmt.Sprintf("%d more errors omitted", n)
}

// numericLiteralsRule names numericLiterals among the validation rules.
const numericLiteralsRule = "PorticoNumericLiterals"

// numericLiterals refuses Int literals outside 32 bits, which gqlparser's ValuesOfCorrectType
// accepts up to 64: `placeOrder(input: {items: [{quantity: 4294967297}]})` validated and reached
// the orders service. The spec's input coercion of Int: "if the integer input value represents a
// value less than -2^31 or greater than or equal to 2^31, a request error should be raised". The
// message is ValuesOfCorrectType's own for literals past 64 bits (and graphql-js's). Variables
// are strictVariables' to check.
func numericLiterals(observers *core.Events, addError core.AddErrFunc) {
	// The walker visits a fragment's values once for each operation that spreads it and once
	// for the fragment itself; one literal is one error.
	seen := map[*ast.Value]bool{}
	observers.OnValue(func(_ *core.Walker, value *ast.Value) {
		if value.Kind != ast.IntValue || value.Definition == nil || value.Definition.Name != "Int" || seen[value] {
			return
		}
		seen[value] = true
		n, err := strconv.ParseInt(value.Raw, 10, 64)
		if err != nil {
			return // past 64 bits: ValuesOfCorrectType reports it
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			addError(core.Message("Int cannot represent non 32-bit signed integer value: %s", value.Raw), core.At(value.Position))
		}
	})
}

// capErrors keeps the first maxRequestErrors errors and says how many more there were.
func capErrors(errs gqlerror.List) gqlerror.List {
	if len(errs) <= maxRequestErrors || (len(errs) == maxRequestErrors+1 && errs[maxRequestErrors].Rule == omittedRule) {
		return errs
	}
	more := len(errs) - maxRequestErrors
	code := errorCode(errs[0])
	if code == "" {
		code = codeBadRequest
	}
	return append(errs[:maxRequestErrors:maxRequestErrors], codedError(code, "%s", omittedMessage(more)))
}
