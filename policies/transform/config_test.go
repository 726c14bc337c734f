package transform

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		in       string
		response bool
		wantErr  string
		static   bool
	}{
		{in: "plain", static: true},
		{in: "", static: true},
		{in: "$$(uuid) is literal", static: true},
		{in: "$(request_id)"},
		{in: "a-$(client_ip)-$(consumer)-$(route)-$(header.X-Foo)"},
		{in: "$(latency_ms)", response: true},
		{in: "$(latency_ms)", wantErr: "only available in response-transform"},
		{in: "$(nope)", wantErr: "unknown template variable $(nope)"},
		{in: "$(uuid", wantErr: "unclosed"},
		{in: "$(header.bad name)", wantErr: "not a valid header name"},
		{in: "a\r\nInjected: x", wantErr: "line break"},
		{in: "$(uuid)\nInjected: x", wantErr: "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tpl, err := parseTemplate(tt.in, tt.response)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tpl.static != tt.static {
				t.Fatalf("static = %v", tpl.static)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	reqTests := []struct {
		name string
		cfg  RequestConfig
		want []string
	}{
		{"nothing configured", RequestConfig{}, []string{"p"}},
		{"bad and forbidden header names", RequestConfig{Headers: Operations{Remove: []string{"bad name", "content-length"}, Add: map[string]string{"Host": "x"}, Rename: map[string]string{"A": "Transfer-Encoding"}}},
			[]string{"p.headers.remove[0]", "p.headers.remove[1]", "p.headers.rename.A", "p.headers.add.Host"}},
		{"bad templates", RequestConfig{Headers: Operations{Add: map[string]string{"X-A": "$(latency_ms)"}}, Query: Operations{Append: map[string]string{"q": "$(bogus)"}}},
			[]string{"p.headers.add.X-A", "p.query.append.q"}},
		{"empty query name", RequestConfig{Query: Operations{Remove: []string{""}}}, []string{"p.query.remove[0]"}},
		{"bad body paths", RequestConfig{Body: RequestBody{Remove: []string{"a..b", ""}, Rename: map[string]string{"user.name": "other.full_name", "x.": "y"}}},
			[]string{"p.body.remove[0]", "p.body.remove[1]", "p.body.rename.user.name", "p.body.rename.x."}},
		{"valid", RequestConfig{Headers: Operations{Add: map[string]string{"X-Id": "$(uuid)"}}, Body: RequestBody{Rename: map[string]string{"user.name": "user.full_name"}}}, nil},
	}
	for _, tt := range reqTests {
		t.Run("request/"+tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("p", &p)
			checkPaths(t, p, tt.want)
			if _, err := NewRequest("x", tt.cfg, policies.Deps{}); (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("NewRequest error %v", err)
			}
		})
	}
	respTests := []struct {
		name string
		cfg  ResponseConfig
		want []string
	}{
		{"nothing configured", ResponseConfig{}, []string{"p"}},
		{"meta without wrap", ResponseConfig{Body: ResponseBody{Remove: []string{"a"}, Meta: map[string]string{"k": "v"}}}, []string{"p.body.meta"}},
		{"bad meta template", ResponseConfig{Body: ResponseBody{Wrap: true, Meta: map[string]string{"k": "$(x)"}}}, []string{"p.body.meta.k"}},
		{"latency allowed", ResponseConfig{Headers: Operations{Add: map[string]string{"X-Took": "$(latency_ms)"}}}, nil},
		{"wrap alone", ResponseConfig{Body: ResponseBody{Wrap: true}}, nil},
	}
	for _, tt := range respTests {
		t.Run("response/"+tt.name, func(t *testing.T) {
			var p confval.Problems
			tt.cfg.Validate("p", &p)
			checkPaths(t, p, tt.want)
			if _, err := NewResponse("x", tt.cfg, policies.Deps{}); (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("NewResponse error %v", err)
			}
		})
	}
}

func checkPaths(t *testing.T, p confval.Problems, want []string) {
	t.Helper()
	var got []string
	for _, pr := range p {
		got = append(got, pr.Path)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("paths %v, want %v (%+v)", got, want, p)
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON; charset=utf-8": true, "application/problem+json": true,
		"text/json": false, "text/plain": false, "": false, "+json": false, "text/event-stream": false,
	} {
		if isJSON(ct) != want {
			t.Errorf("isJSON(%q) = %v", ct, !want)
		}
	}
}
