package resolvers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/portico-gw/portico/upstreams"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []cursor{{}, {after: "b186MTIz", skip: 0}, {after: "x:y:z", skip: 7}, {skip: maxLimit}} {
		got, ok := decodeCursor(c.encode())
		if !ok || got != c {
			t.Errorf("decode(encode(%+v)) = %+v, %v", c, got, ok)
		}
	}
}

func TestDecodeCursorRejectsForgeries(t *testing.T) {
	for _, s := range []string{"", "!!!", "bm9jb2xvbg", enc("-1:x"), enc("101:x"), enc("abc:x"), enc("1e3:x")} {
		if c, ok := decodeCursor(s); ok {
			t.Errorf("decodeCursor(%q) = %+v, want rejected", s, c)
		}
	}
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestUpstreamErrorMapping(t *testing.T) {
	target := "http://10.1.2.3:9101"
	tests := []struct {
		name string
		err  error
		code string
		msg  string
	}{
		{"timeout", &upstreams.Error{Upstream: "users", Target: target, Kind: upstreams.ErrTimeout}, "UPSTREAM_TIMEOUT", "the users service timed out"},
		{"no healthy target", &upstreams.Error{Upstream: "users", Kind: upstreams.ErrNoHealthyTarget}, "UPSTREAM_UNAVAILABLE", "the users service is unavailable"},
		{"open circuit", &upstreams.Error{Upstream: "users", Kind: upstreams.ErrCircuitOpen}, "UPSTREAM_UNAVAILABLE", "the users service is unavailable"},
		{"refused", &upstreams.Error{Upstream: "users", Target: target, Kind: upstreams.ErrBadGateway, Err: errors.New("dial tcp 10.1.2.3:9101: connection refused")}, "BAD_GATEWAY", "the users service failed"},
		{"backend 500", &upstreams.StatusError{Upstream: "users", Status: 500, Body: []byte(`{"at":"` + target + `"}`)}, "BAD_GATEWAY", "the users service failed"},
		{"backend 400", &upstreams.StatusError{Upstream: "users", Status: 400, Body: []byte("bad")}, "BAD_REQUEST", "the users service rejected the request"},
		{"backend 404", &upstreams.StatusError{Upstream: "users", Status: 404}, "NOT_FOUND", "the users service found no such object"},
		{"client gone", fmt.Errorf("calling: %w", context.Canceled), "CLIENT_CLOSED_REQUEST", "the request was canceled"},
		{"deadline", context.DeadlineExceeded, "UPSTREAM_TIMEOUT", "the users service timed out"},
		{"anything else", errors.New("boom at " + target), "INTERNAL", "the users service failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ge := upstreamError("users", tc.err)
			if ge.Extensions["code"] != tc.code || ge.Message != tc.msg {
				t.Errorf("got %q %v, want %q code %s", ge.Message, ge.Extensions, tc.msg, tc.code)
			}
			b, _ := json.Marshal(ge)
			if strings.Contains(string(b), "10.1.2.3") {
				t.Errorf("client-visible error %s leaks the target", b)
			}
			if !errors.Is(ge, tc.err) {
				t.Error("the cause is lost for logs")
			}
			if ge == upstreamError("users", tc.err) {
				t.Error("errors are shared between fields")
			}
		})
	}
}

func TestIsNotFound(t *testing.T) {
	if !isNotFound(&upstreams.StatusError{Upstream: "users", Status: 404}) {
		t.Error("a 404 StatusError is not found")
	}
	if isNotFound(&upstreams.StatusError{Upstream: "users", Status: 400}) || isNotFound(errors.New("x")) {
		t.Error("other errors are found")
	}
}

func TestMarkRequired(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"timeout", upstreamError("users", &upstreams.Error{Upstream: "users", Kind: upstreams.ErrTimeout}), http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT"},
		{"unavailable", upstreamError("users", &upstreams.Error{Upstream: "users", Kind: upstreams.ErrNoHealthyTarget}), http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE"},
		{"bad gateway", upstreamError("users", &upstreams.StatusError{Upstream: "users", Status: 500}), http.StatusBadGateway, "BAD_GATEWAY"},
		{"backend unavailable", upstreamError("users", &upstreams.StatusError{Upstream: "users", Status: 503}), http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE"},
		{"backend timeout", upstreamError("users", &upstreams.StatusError{Upstream: "users", Status: 504}), http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT"},
		{"bad input", inputError("no"), http.StatusBadRequest, codeBadUserInput},
		{"foreign error", errors.New("secret detail"), http.StatusInternalServerError, codeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var original map[string]any
			if ge, ok := tc.err.(*gqlerror.Error); ok {
				original = ge.Extensions
			}
			marked := markRequired(tc.err)
			if marked.Extensions["required"] != true || marked.Extensions["code"] != tc.code {
				t.Errorf("extensions = %v", marked.Extensions)
			}
			if _, shared := original["required"]; shared {
				t.Error("marking changed the original error, which other fields may share")
			}
			if strings.Contains(marked.Message, "secret") {
				t.Errorf("message %q shows a foreign error's text", marked.Message)
			}
			if status, ok := IsRequiredFailure(marked); !ok || status != tc.status {
				t.Errorf("IsRequiredFailure = %d, %v; want %d", status, ok, tc.status)
			}
			// After JSON, as a BFF or client sees it.
			var presented gqlerror.Error
			b, _ := json.Marshal(marked)
			_ = json.Unmarshal(b, &presented)
			if status, ok := IsRequiredFailure(&presented); !ok || status != tc.status {
				t.Errorf("presented: IsRequiredFailure = %d, %v; want %d", status, ok, tc.status)
			}
		})
	}
	if _, ok := IsRequiredFailure(upstreamError("users", errors.New("x"))); ok {
		t.Error("an unmarked error is a required failure")
	}
}

func TestRequiredStatusPicksTheHighest(t *testing.T) {
	timeout := markRequired(upstreamError("users", &upstreams.Error{Upstream: "users", Kind: upstreams.ErrTimeout}))
	gateway := markRequired(upstreamError("orders", &upstreams.Error{Upstream: "orders", Kind: upstreams.ErrBadGateway}))
	plain := upstreamError("payments", &upstreams.Error{Upstream: "payments", Kind: upstreams.ErrTimeout})
	for _, list := range []gqlerror.List{{timeout, gateway, plain}, {plain, gateway, timeout}} {
		if s, ok := RequiredStatus(list); !ok || s != http.StatusGatewayTimeout {
			t.Errorf("RequiredStatus = %d, %v; want 504", s, ok)
		}
	}
	if _, ok := RequiredStatus(gqlerror.List{plain}); ok {
		t.Error("no required failure reported as one")
	}
}

func TestStableErrorsSortsByPath(t *testing.T) {
	mk := func(msg string, path ...any) *gqlerror.Error {
		var p ast.Path
		for _, e := range path {
			switch v := e.(type) {
			case int:
				p = append(p, ast.PathIndex(v))
			case string:
				p = append(p, ast.PathName(v))
			}
		}
		return &gqlerror.Error{Message: msg, Path: p}
	}
	want := []string{"a", "b.0.x", "b.2.x", "b.10.x", "b.10.y", "c", "c.d"}
	errs := gqlerror.List{
		mk("c.d", "c", "d"), mk("b.10.y", "b", 10, "y"), mk("b.2.x", "b", 2, "x"), mk("c", "c"),
		mk("b.10.x", "b", 10, "x"), mk("a", "a"), mk("b.0.x", "b", 0, "x"),
	}
	resp := StableErrors{}.InterceptResponse(context.Background(), func(context.Context) *graphql.Response {
		return &graphql.Response{Errors: errs}
	})
	var got []string
	for _, e := range resp.Errors {
		got = append(got, e.Message)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order = %v, want %v", got, want)
	}

	// Without paths (a document's validation errors): the document's order, whatever the
	// messages, and an error that points nowhere (a count of omitted errors) last.
	at := func(msg string, line, col int) *gqlerror.Error {
		e := &gqlerror.Error{Message: msg}
		if line > 0 {
			e.Locations = []gqlerror.Location{{Line: line, Column: col}}
		}
		return e
	}
	errs = gqlerror.List{at("3 more errors omitted", 0, 0), at("z at 2:1", 2, 1), at("y at 1:9", 1, 9), at("x at 1:2", 1, 2)}
	resp = StableErrors{}.InterceptResponse(context.Background(), func(context.Context) *graphql.Response {
		return &graphql.Response{Errors: errs}
	})
	got = got[:0]
	for _, e := range resp.Errors {
		got = append(got, e.Message)
	}
	if want := "x at 1:2|y at 1:9|z at 2:1|3 more errors omitted"; strings.Join(got, "|") != want {
		t.Errorf("order = %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestPageItems(t *testing.T) {
	five := 5
	var none *int
	for _, tc := range []struct {
		in   any
		want int
	}{
		{int64(5), 5}, {5, 5}, {int32(5), 5}, {5.0, 5}, {json.Number("5"), 5}, {&five, 5}, {"5", 5},
		{int64(-3), 0},
		// null is the resolvers' default page, as pageSize reads it.
		{nil, defaultFirst}, {none, defaultFirst},
		// Unreadable or huge: the largest page, never the smallest.
		{int64(1) << 40, 1<<31 - 1}, {"lots", 1<<31 - 1}, {true, 1<<31 - 1}, {json.Number("x"), 1<<31 - 1},
	} {
		if got := PageItems(tc.in); got != tc.want {
			t.Errorf("PageItems(%#v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestUserPageEncodesLikeURLValues(t *testing.T) {
	for _, id := range []string{"u1", "", "a b&c=d", "ü/?#%"} {
		want := url.Values{"user_id": {id}, "limit": {"5"}}.Encode()
		if got := userPage(id, 5); got != want {
			t.Errorf("userPage(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestOutsideInt32 finds an integer outside GraphQL's 32-bit Int whatever Go type a resolver
// returns it in, through pointers and lists, and passes the bounds themselves.
func TestOutsideInt32(t *testing.T) {
	big, minInt, maxInt := 10_000_000_000, math.MinInt32, math.MaxInt32
	tests := []struct {
		name    string
		v       any
		outside bool
	}{
		{name: "int", v: 5},
		{name: "largest", v: maxInt},
		{name: "smallest", v: minInt},
		{name: "one past the largest", v: maxInt + 1, outside: true},
		{name: "one below the smallest", v: minInt - 1, outside: true},
		{name: "pointer", v: &big, outside: true},
		{name: "nil pointer", v: (*int)(nil)},
		{name: "int64", v: int64(big), outside: true},
		{name: "uint64", v: uint64(math.MaxUint64), outside: true},
		{name: "list", v: []int{1, big}, outside: true},
		{name: "list of pointers", v: []*int{&maxInt, nil}},
		{name: "nil", v: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, outside := outsideInt32(reflect.ValueOf(tt.v)); outside != tt.outside {
				t.Errorf("outsideInt32(%v) = %v, want %v", tt.v, outside, tt.outside)
			}
		})
	}
}
