package transform

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// PHP, WSGI and Rack read X_Internal_Admin as X-Internal-Admin, so removing one spelling and
// forwarding the other would let a client through.
func TestRequestHeaderRemoveCoversUnderscoreSpelling(t *testing.T) {
	tests := []struct {
		name   string
		ops    Operations
		client http.Header
		want   http.Header // headers that must arrive as given; "" values must be absent
	}{
		{name: "remove drops both spellings",
			ops:    Operations{Remove: []string{"X-Internal-Admin"}},
			client: http.Header{"X_Internal_Admin": {"1"}, "X-Internal-Admin": {"1"}, "X_internal-ADMIN": {"1"}, "X-Other_Thing": {"keep"}},
			want:   http.Header{"X-Other_thing": {"keep"}}},
		{name: "a configured underscore name drops the dash spelling too",
			ops:    Operations{Remove: []string{"X_Internal_Admin"}},
			client: http.Header{"X-Internal-Admin": {"1"}, "X_Internal_Admin": {"1"}}},
		{name: "rename moves the exact name and drops other spellings of the source",
			ops:    Operations{Rename: map[string]string{"X-Api-Version": "X-Version"}},
			client: http.Header{"X-Api-Version": {"2"}, "X_Api_Version": {"9"}},
			want:   http.Header{"X-Version": {"2"}}},
		{name: "rename to the dash spelling fixes the name",
			ops:    Operations{Rename: map[string]string{"X_Legacy": "X-Legacy"}},
			client: http.Header{"X_Legacy": {"v"}, "X-Legacy": {"client"}},
			want:   http.Header{"X-Legacy": {"v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := requestGateway(t, RequestConfig{Headers: tt.ops})
			got := send(t, gw, "GET", "/", tt.client, nil)
			dropped := map[string]bool{}
			for _, n := range tt.ops.Remove {
				dropped[http.CanonicalHeaderKey(strings.ReplaceAll(n, "_", "-"))] = true
			}
			for n := range tt.ops.Rename {
				dropped[http.CanonicalHeaderKey(strings.ReplaceAll(n, "_", "-"))] = true
			}
			for k := range got.Header {
				norm := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
				if dropped[norm] && tt.want[k] == nil {
					t.Errorf("upstream received %s: %v", k, got.Header[k])
				}
			}
			for k, v := range tt.want {
				if strings.Join(got.Header[k], "|") != strings.Join(v, "|") {
					t.Errorf("%s = %q, want %q (all: %v)", k, got.Header[k], v, got.Header)
				}
			}
		})
	}
}

// url.ParseQuery rejects some pairs (a bad escape, a ';'); a query edit must not drop them, nor
// let them slip past a remove.
func TestQueryEditKeepsUnparsablePairs(t *testing.T) {
	add := Operations{Add: map[string]string{"limit": "20"}}
	tests := []struct {
		name  string
		ops   Operations
		query string
		want  string
	}{
		{name: "bad escape in a value is kept verbatim", ops: add, query: "q=100%&x=1", want: "limit=20&q=100%&x=1"},
		{name: "semicolon pair is kept verbatim", ops: add, query: "a=1;b=2&x=1", want: "a=1;b=2&limit=20&x=1"},
		{name: "bad escape in a name is kept verbatim", ops: add, query: "%zz=1&b", want: "%zz=1&b=&limit=20"},
		{name: "remove reaches a pair with a bad value", ops: Operations{Remove: []string{"token"}}, query: "token=%zz&x=1", want: "x=1"},
		{name: "rename keeps the raw value", ops: Operations{Rename: map[string]string{"q": "search"}}, query: "q=100%&x=1", want: "search=100%&x=1"},
		{name: "replace sets a pair with a bad value", ops: Operations{Replace: map[string]string{"q": "ok"}}, query: "q=100%", want: "q=ok"},
		{name: "empty segments are dropped as before", ops: add, query: "&&x=1&", want: "limit=20&x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := requestGateway(t, RequestConfig{Query: tt.ops})
			got := send(t, gw, "GET", "/?"+tt.query, nil, nil)
			if got.Query != tt.want {
				t.Fatalf("upstream got %q, want %q", got.Query, tt.want)
			}
		})
	}
}

// A ';' pair hides names from the policy for backends that split on ';' as well as '&'. When it
// hides a name the policy removes, renames or replaces, the request is refused rather than
// forwarded with the name inside.
func TestQueryEditRefusesHiddenEditedName(t *testing.T) {
	gw := requestGateway(t, RequestConfig{Query: Operations{Remove: []string{"token"}}})
	resp, err := http.Get(gw.URL + "/?a=1;token=secret&x=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Error.Code != "BAD_REQUEST" {
		t.Fatalf("status %d body %s, want a 400 JSON error", resp.StatusCode, b)
	}
	// The reviewer's form: the unrelated parameter of a ';' pair survives an add.
	gw = requestGateway(t, RequestConfig{Query: Operations{Add: map[string]string{"limit": "20"}}})
	for _, raw := range []string{"q=100%&x=1", "a=1;b=2&x=1"} {
		got := send(t, gw, "GET", "/?"+raw, nil, nil)
		q, _ := url.ParseQuery(strings.ReplaceAll(got.Query, ";", "%3B"))
		if q.Get("limit") != "20" {
			t.Fatalf("%s: limit not added: %q", raw, got.Query)
		}
		if !strings.Contains(got.Query, "q=") && !strings.Contains(got.Query, "a=") {
			t.Errorf("%s: upstream got %q: the client's own parameter was dropped", raw, got.Query)
		}
	}
}
