package transform

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// received is what the fake upstream saw.
type received struct {
	Header        http.Header
	Query         string
	Body          string
	ContentLength int64
	Chunked       bool
}

// echoUpstream answers with what it received, so tests assert the request after transforms.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream read: %v", err)
		}
		out, _ := json.Marshal(received{Header: r.Header, Query: r.URL.RawQuery, Body: string(b),
			ContentLength: r.ContentLength, Chunked: len(r.TransferEncoding) > 0})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}))
	t.Cleanup(s.Close)
	return s
}

// requestGateway serves cfg in front of the echo upstream, with Info as the edge would set it.
func requestGateway(t *testing.T, cfg RequestConfig) *httptest.Server {
	t.Helper()
	p, err := NewRequest("rt", cfg, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(echoUpstream(t).URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	h := p.Wrap(proxy)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqctx.Info{ID: "req-42", ClientIP: "203.0.113.7", Route: "orders", Identity: &reqctx.Identity{Consumer: "web-app"}}
		h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
	}))
	t.Cleanup(gw.Close)
	return gw
}

func send(t *testing.T, gw *httptest.Server, method, path string, header http.Header, body io.Reader) received {
	t.Helper()
	req, _ := http.NewRequest(method, gw.URL+path, body)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got received
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// Each row would fail if the operations ran in another order than Kong's
// remove → rename → replace → add → append.
func TestHeaderOperationsKongOrder(t *testing.T) {
	tests := []struct {
		name   string
		ops    Operations
		client http.Header
		header string
		want   []string
	}{
		{name: "remove before add: removed then added", ops: Operations{Remove: []string{"X-A"}, Add: map[string]string{"X-A": "added"}},
			client: http.Header{"X-A": {"client"}}, header: "X-A", want: []string{"added"}},
		{name: "rename before replace: the renamed header is replaced", ops: Operations{Rename: map[string]string{"X-Old": "X-New"}, Replace: map[string]string{"X-New": "replaced"}},
			client: http.Header{"X-Old": {"v"}}, header: "X-New", want: []string{"replaced"}},
		{name: "rename removes the old name", ops: Operations{Rename: map[string]string{"X-Old": "X-New"}},
			client: http.Header{"X-Old": {"v"}}, header: "X-Old", want: nil},
		{name: "rename before add: add sees the renamed header", ops: Operations{Rename: map[string]string{"X-F": "X-G"}, Add: map[string]string{"X-G": "added"}},
			client: http.Header{"X-F": {"f"}}, header: "X-G", want: []string{"f"}},
		{name: "replace only if present", ops: Operations{Replace: map[string]string{"X-Missing": "r"}}, header: "X-Missing", want: nil},
		{name: "replace before add: an added header is not replaced", ops: Operations{Replace: map[string]string{"X-B": "replaced"}, Add: map[string]string{"X-B": "added"}},
			header: "X-B", want: []string{"added"}},
		{name: "add only if absent", ops: Operations{Add: map[string]string{"X-D": "added"}}, client: http.Header{"X-D": {"client"}}, header: "X-D", want: []string{"client"}},
		{name: "add before append: both values", ops: Operations{Add: map[string]string{"X-C": "a"}, Append: map[string]string{"X-C": "b"}}, header: "X-C", want: []string{"a", "b"}},
		{name: "append always", ops: Operations{Append: map[string]string{"X-E": "b"}}, client: http.Header{"X-E": {"c"}}, header: "X-E", want: []string{"c", "b"}},
		{name: "names are case-insensitive", ops: Operations{Remove: []string{"x-lower"}}, client: http.Header{"X-Lower": {"v"}}, header: "X-Lower", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := requestGateway(t, RequestConfig{Headers: tt.ops})
			got := send(t, gw, "GET", "/", tt.client, nil)
			if g := got.Header.Values(tt.header); strings.Join(g, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("%s = %q, want %q", tt.header, g, tt.want)
			}
		})
	}
}

func TestQueryOperations(t *testing.T) {
	tests := []struct {
		name, query string
		ops         Operations
		want        string
	}{
		{"remove, rename, replace, add, append", "token=secret&q=shoes&page=2&sort=asc",
			Operations{Remove: []string{"token"}, Rename: map[string]string{"q": "search"}, Replace: map[string]string{"page": "1", "missing": "x"},
				Add: map[string]string{"limit": "20", "sort": "desc"}, Append: map[string]string{"tag": "a"}},
			"limit=20&page=1&search=shoes&sort=asc&tag=a"},
		{"names are case-sensitive", "Q=1", Operations{Remove: []string{"q"}}, "Q=1"},
		{"templated value", "", Operations{Add: map[string]string{"caller": "$(consumer)"}}, "caller=web-app"},
		{"add before append on an absent name", "", Operations{Add: map[string]string{"x": "1"}, Append: map[string]string{"x": "2"}}, "x=1&x=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := requestGateway(t, RequestConfig{Query: tt.ops})
			if got := send(t, gw, "GET", "/p?"+tt.query, nil, nil); got.Query != tt.want {
				t.Fatalf("query %q, want %q", got.Query, tt.want)
			}
		})
	}
}

func TestRequestTemplates(t *testing.T) {
	gw := requestGateway(t, RequestConfig{Headers: Operations{
		Remove: []string{"X-Token"},
		Add: map[string]string{
			"X-Request": "$(request_id)", "X-Client": "ip=$(client_ip)", "X-Consumer": "$(consumer)", "X-Route": "$(route)",
			"X-Uuid": "$(uuid)", "X-Copied": "$(header.x-token)", "X-Literal": "cost $$(5) and $ alone", "X-Missing": "[$(header.X-Nope)]",
		},
	}})
	got := send(t, gw, "GET", "/", http.Header{"X-Token": {"tok"}}, nil)
	want := map[string]string{
		"X-Request": "req-42", "X-Client": "ip=203.0.113.7", "X-Consumer": "web-app", "X-Route": "orders",
		"X-Copied": "tok", "X-Literal": "cost $(5) and $ alone", "X-Missing": "[]", "X-Token": "",
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got.Header.Get("X-Uuid")) {
		t.Errorf("X-Uuid %q is not a v4 UUID", got.Header.Get("X-Uuid"))
	}
}

// Without Info (unit use) templates fall back to the request itself.
func TestTemplatesWithoutInfo(t *testing.T) {
	p, err := NewRequest("rt", RequestConfig{Headers: Operations{Add: map[string]string{"X-Client": "$(client_ip)", "X-Id": "$(request_id)", "X-Who": "<$(consumer)>"}}}, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "[2001:db8::1]:5555"
	req.Header.Set("X-Request-ID", "from-client")
	p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), req)
	if req.Header.Get("X-Client") != "2001:db8::1" || req.Header.Get("X-Id") != "from-client" || req.Header.Get("X-Who") != "<>" {
		t.Fatalf("headers %v", req.Header)
	}
}

type unknownLength struct{ io.Reader }

func TestRequestBody(t *testing.T) {
	cfg := RequestConfig{Body: RequestBody{
		Remove:       []string{"user.password", "items.secret", "debug"},
		Rename:       map[string]string{"user.name": "full_name", "ref": "reference", "user.mail": "user.email"},
		MaxBodyBytes: 256,
	}}
	big := `{"debug":true,"pad":"` + strings.Repeat("x", 300) + `"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		chunked     bool
		want        string
	}{
		{name: "fields removed and renamed, arrays entered",
			contentType: "application/json; charset=utf-8",
			body:        `{"user":{"name":"Ada","password":"p","mail":"a@x"},"items":[{"id":1,"secret":"s"},{"id":2}],"debug":1,"ref":"<r&>","n":12345678901234567890}`,
			want:        `{"items":[{"id":1},{"id":2}],"n":12345678901234567890,"reference":"<r&>","user":{"email":"a@x","full_name":"Ada"}}`},
		{name: "+json types are JSON", contentType: "application/vnd.api+json", body: `{"debug":1,"a":2}`, want: `{"a":2}`},
		{name: "top-level array", contentType: "application/json", body: `[{"debug":1},{"debug":2,"k":3}]`, want: `[{},{"k":3}]`},
		{name: "chunked JSON is edited and sent with a length", contentType: "application/json", body: `{"debug":1,"a":2}`, chunked: true, want: `{"a":2}`},
		{name: "not JSON by Content-Type: untouched", contentType: "text/plain", body: `{"debug":1}`, want: `{"debug":1}`},
		{name: "invalid JSON: untouched", contentType: "application/json", body: `{"debug":1,`, want: `{"debug":1,`},
		{name: "two JSON values: untouched", contentType: "application/json", body: `{"debug":1} {"x":2}`, want: `{"debug":1} {"x":2}`},
		{name: "over max_body_bytes by Content-Length: untouched", contentType: "application/json", body: big, want: big},
		{name: "over max_body_bytes while reading: untouched and whole", contentType: "application/json", body: big, chunked: true, want: big},
		{name: "missing path is a no-op", contentType: "application/json", body: `{"user":"flat"}`, want: `{"user":"flat"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := requestGateway(t, cfg)
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = unknownLength{body}
			}
			got := send(t, gw, "POST", "/", http.Header{"Content-Type": {tt.contentType}}, body)
			if got.Body != tt.want {
				t.Fatalf("upstream body\n got %s\nwant %s", got.Body, tt.want)
			}
			if !got.Chunked && got.ContentLength != int64(len(tt.want)) {
				t.Errorf("upstream Content-Length %d for %d bytes", got.ContentLength, len(tt.want))
			}
		})
	}
}

// GetBody lets the transport (and retries) resend the edited body, not the original.
func TestRequestBodyGetBody(t *testing.T) {
	p, _ := NewRequest("rt", RequestConfig{Body: RequestBody{Remove: []string{"a"}}}, policies.Deps{})
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"a":1,"b":2}`))
	req.Header.Set("Content-Type", "application/json")
	var seen *http.Request
	p.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r })).ServeHTTP(httptest.NewRecorder(), req)
	rc, err := seen.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != `{"b":2}` || seen.ContentLength != 7 || seen.Header.Get("Content-Length") != "7" {
		t.Fatalf("GetBody %q, ContentLength %d, header %q", b, seen.ContentLength, seen.Header.Get("Content-Length"))
	}
}

// A read error (a size limit, a client gone) reaches the handler after the bytes read so far.
func TestRequestBodyReadErrorPreserved(t *testing.T) {
	p, _ := NewRequest("rt", RequestConfig{Body: RequestBody{Remove: []string{"a"}}}, policies.Deps{})
	req := httptest.NewRequest("POST", "/", nil)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"a":`), errReader{&http.MaxBytesError{Limit: 5}}))
	p.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if string(b) != `{"a":` {
			t.Errorf("body %q", b)
		}
		if _, ok := err.(*http.MaxBytesError); !ok {
			t.Errorf("error %v, want the original *http.MaxBytesError", err)
		}
	})).ServeHTTP(httptest.NewRecorder(), req)
}

func BenchmarkRequestHeaders(b *testing.B) {
	for _, bc := range []struct {
		name string
		ops  Operations
	}{
		{"static", Operations{Remove: []string{"Cookie"}, Rename: map[string]string{"X-Old": "X-New"}, Add: map[string]string{"X-Source": "portico"}}},
		{"templated", Operations{Remove: []string{"Cookie"}, Add: map[string]string{"X-Request": "$(request_id)", "X-Caller": "$(consumer)@$(client_ip)"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, _ := NewRequest("rt", RequestConfig{Headers: bc.ops}, policies.Deps{})
			h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest("GET", "/", nil)
			req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ID: "r", ClientIP: "10.0.0.1", Identity: &reqctx.Identity{Consumer: "c"}}))
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				req.Header = http.Header{"Cookie": {"a=b"}, "X-Old": {"v"}}
				h.ServeHTTP(w, req)
			}
		})
	}
}

func BenchmarkRequestBody(b *testing.B) {
	p, _ := NewRequest("rt", RequestConfig{Body: RequestBody{Remove: []string{"user.password"}}}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	body := []byte(`{"user":{"name":"Ada","password":"secret","roles":["a","b"]},"items":[1,2,3]}`)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, req)
	}
}
