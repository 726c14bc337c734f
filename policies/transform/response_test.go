package transform

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// responseGateway serves cfg in front of upstream through a reverse proxy.
func responseGateway(t *testing.T, cfg ResponseConfig, upstream http.HandlerFunc) *httptest.Server {
	t.Helper()
	p, err := NewResponse("resp", cfg, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	be := httptest.NewServer(upstream)
	t.Cleanup(be.Close)
	u, _ := url.Parse(be.URL)
	h := p.Wrap(httputil.NewSingleHostReverseProxy(u))
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqctx.Info{ID: "req-7", ClientIP: "198.51.100.1", Start: time.Now().Add(-1500 * time.Millisecond)}
		h.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
	}))
	t.Cleanup(gw.Close)
	return gw
}

func jsonUpstream(status int, contentType, body string, extra http.Header) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range extra {
			w.Header()[k] = v
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, body)
		}
	}
}

func TestResponseTransform(t *testing.T) {
	edit := ResponseConfig{
		Headers: Operations{Remove: []string{"Server", "X-Powered-By"}, Add: map[string]string{"X-Request": "$(request_id)", "X-Took": "$(latency_ms)"}},
		Body: ResponseBody{Remove: []string{"internal_id", "users.ssn"}, Rename: map[string]string{"users.nm": "name"}, Wrap: true,
			Meta: map[string]string{"request_id": "$(request_id)", "latency_ms": "$(latency_ms)", "source": "portico $(client_ip)"}, MaxBodyBytes: 200},
	}
	big := `{"pad":"` + strings.Repeat("x", 300) + `"}`
	users := `{"internal_id":9,"users":[{"nm":"a","ssn":"1"},{"nm":"b"}]}`
	tests := []struct {
		name     string
		cfg      ResponseConfig
		method   string
		upstream http.HandlerFunc
		wantCode int
		wantBody string // "*" skips the check
		wantHdr  map[string]string
	}{
		{name: "edited and wrapped, Content-Length fixed", cfg: edit, method: "GET",
			upstream: jsonUpstream(200, "application/json", users, http.Header{"Server": {"x"}, "X-Powered-By": {"php"}, "Content-Length": {strconv.Itoa(len(users))}}),
			wantCode: 200, wantBody: `{"data":{"users":[{"name":"a"},{"name":"b"}]},"meta":{"latency_ms":LAT,"request_id":"req-7","source":"portico 198.51.100.1"}}`,
			wantHdr: map[string]string{"Server": "", "X-Powered-By": "", "X-Request": "req-7"}},
		{name: "error statuses are edited too", cfg: edit, method: "GET",
			upstream: jsonUpstream(404, "application/problem+json", `{"internal_id":1,"title":"nope"}`, nil),
			wantCode: 404, wantBody: `{"data":{"title":"nope"},"meta":{"latency_ms":LAT,"request_id":"req-7","source":"portico 198.51.100.1"}}`},
		{name: "not JSON by Content-Type: untouched", cfg: edit, method: "GET",
			upstream: jsonUpstream(200, "text/html", `{"internal_id":9}`, nil), wantCode: 200, wantBody: `{"internal_id":9}`},
		{name: "not JSON by decoding: untouched", cfg: edit, method: "GET",
			upstream: jsonUpstream(200, "application/json", `{"internal_id":`, nil), wantCode: 200, wantBody: `{"internal_id":`},
		{name: "declared over max_body_bytes: untouched", cfg: edit, method: "GET",
			upstream: jsonUpstream(200, "application/json", big, http.Header{"Content-Length": {strconv.Itoa(len(big))}}), wantCode: 200, wantBody: big},
		{name: "undeclared over max_body_bytes: untouched and whole", cfg: edit, method: "GET",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				for i := 0; i < len(big); i += 50 {
					_, _ = io.WriteString(w, big[i:min(i+50, len(big))])
					w.(http.Flusher).Flush()
				}
			}, wantCode: 200, wantBody: big},
		{name: "204 untouched", cfg: edit, method: "GET", upstream: jsonUpstream(204, "application/json", "", nil), wantCode: 204, wantBody: ""},
		{name: "HEAD: headers edited, no Content-Length (GET's edited length is unknown)", cfg: edit, method: "HEAD",
			upstream: jsonUpstream(200, "application/json", "", http.Header{"Server": {"x"}, "Content-Length": {"40"}}), wantCode: 200, wantBody: "",
			wantHdr: map[string]string{"Server": "", "Content-Length": ""}},
		{name: "HEAD of a body that is not edited keeps Content-Length", cfg: edit, method: "HEAD",
			upstream: jsonUpstream(200, "text/plain", "", http.Header{"Content-Length": {"40"}}), wantCode: 200, wantBody: "",
			wantHdr: map[string]string{"Content-Length": "40"}},
		{name: "header-only transform leaves the body alone", cfg: ResponseConfig{Headers: Operations{Replace: map[string]string{"Server": "portico"}}}, method: "GET",
			upstream: jsonUpstream(200, "application/json", `{"internal_id":1}`, http.Header{"Server": {"nginx"}}), wantCode: 200, wantBody: `{"internal_id":1}`,
			wantHdr: map[string]string{"Server": "portico"}},
		{name: "wrap only keeps the body's bytes", cfg: ResponseConfig{Body: ResponseBody{Wrap: true}}, method: "GET",
			upstream: jsonUpstream(200, "application/json", " [1, 2,3]\n", nil), wantCode: 200, wantBody: `{"data":[1, 2,3],"meta":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := responseGateway(t, tt.cfg, tt.upstream)
			req, _ := http.NewRequest(tt.method, gw.URL, nil)
			req.Header.Set("Accept-Encoding", "identity")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			want := tt.wantBody
			if strings.Contains(want, "LAT") {
				// latency is measured from Info.Start, set 1.5 s in the past.
				var v struct {
					Meta struct {
						LatencyMS json.Number `json:"latency_ms"`
					}
				}
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatalf("body %s: %v", b, err)
				}
				if n, err := v.Meta.LatencyMS.Int64(); err != nil || n < 1500 || n > 60000 {
					t.Fatalf("latency_ms %q", v.Meta.LatencyMS)
				}
				want = strings.Replace(want, "LAT", string(v.Meta.LatencyMS), 1)
			}
			if string(b) != want {
				t.Fatalf("body\n got %s\nwant %s", b, want)
			}
			if tt.method != "HEAD" && resp.ContentLength >= 0 && resp.ContentLength != int64(len(b)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(b))
			}
			for k, v := range tt.wantHdr {
				if g := resp.Header.Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

// A compressed body that is not JSON is not the edit's business: it passes untouched. (Compressed
// JSON is refused with a 502, see TestBodyEditFailsClosedOnPartialOrEncodedAnswer; the policy
// asks the upstream for identity.)
func TestCompressedNonJSONUntouched(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, `{"internal_id":1}`)
	_ = zw.Close()
	gw := responseGateway(t, ResponseConfig{Body: ResponseBody{Remove: []string{"internal_id"}}},
		jsonUpstream(200, "application/octet-stream", gz.String(), http.Header{"Content-Encoding": {"gzip"}}))
	req, _ := http.NewRequest("GET", gw.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(b, gz.Bytes()) {
		t.Fatalf("status %d: compressed body changed", resp.StatusCode)
	}
}

// Streams pass through as they are written: the client reads the first event while the upstream
// is still waiting to send the second. Both a header-only transform and one with body edits
// (which never buffers an event stream) must stream.
func TestStreamsPassThrough(t *testing.T) {
	for _, cfg := range []ResponseConfig{
		{Headers: Operations{Add: map[string]string{"X-Via": "portico"}}},
		{Headers: Operations{Add: map[string]string{"X-Via": "portico"}}, Body: ResponseBody{Remove: []string{"a"}}},
	} {
		release := make(chan struct{})
		gw := responseGateway(t, cfg, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			_, _ = io.WriteString(w, "data: two\n\n")
		})
		resp, err := http.Get(gw.URL)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: one\n" {
			t.Fatalf("first event %q %v", line, err)
		}
		if resp.Header.Get("X-Via") != "portico" {
			t.Errorf("X-Via %q", resp.Header.Get("X-Via"))
		}
		close(release)
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "\ndata: two\n\n" {
			t.Fatalf("rest %q", rest)
		}
	}
}

// A header-only transform never holds the body: the policy's writer passes Write straight on.
func TestHeaderOnlyDoesNotBuffer(t *testing.T) {
	p, _ := NewResponse("r", ResponseConfig{Headers: Operations{Remove: []string{"Server"}}}, policies.Deps{})
	rec := httptest.NewRecorder()
	p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"a":1}`))
		if rec.Body.String() != `{"a":1}` {
			t.Errorf("body held back: %q", rec.Body.String())
		}
	})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
}

// An answer that writes nothing still gets the header edits.
func TestEmptyAnswerHeaders(t *testing.T) {
	p, _ := NewResponse("r", ResponseConfig{Headers: Operations{Add: map[string]string{"X-A": "1"}}}, policies.Deps{})
	rec := httptest.NewRecorder()
	p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Header().Get("X-A") != "1" || rec.Code != 200 {
		t.Fatalf("code %d headers %v", rec.Code, rec.Header())
	}
}

// $(header.X) in a response transform reads the request's header.
func TestResponseHeaderTemplateReadsRequest(t *testing.T) {
	p, _ := NewResponse("r", ResponseConfig{Headers: Operations{Add: map[string]string{"X-Echo": "$(header.X-Client-Version)"}}}, policies.Deps{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Client-Version", "3.1")
	p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })).ServeHTTP(rec, req)
	if rec.Header().Get("X-Echo") != "3.1" || rec.Code != 201 {
		t.Fatalf("code %d headers %v", rec.Code, rec.Header())
	}
}

func BenchmarkResponse(b *testing.B) {
	body := []byte(`{"internal_id":9,"users":[{"name":"a","ssn":"1"},{"name":"b"}],"total":2}`)
	for _, bc := range []struct {
		name string
		cfg  ResponseConfig
	}{
		{"headers-only", ResponseConfig{Headers: Operations{Remove: []string{"Server"}, Add: map[string]string{"X-Request": "$(request_id)"}}}},
		{"body-remove-and-wrap", ResponseConfig{Body: ResponseBody{Remove: []string{"internal_id", "users.ssn"}, Wrap: true, Meta: map[string]string{"request_id": "$(request_id)", "latency_ms": "$(latency_ms)"}}}},
		{"wrap-only", ResponseConfig{Body: ResponseBody{Wrap: true, Meta: map[string]string{"request_id": "$(request_id)"}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, _ := NewResponse("r", bc.cfg, policies.Deps{})
			h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Server", "x")
				_, _ = w.Write(body)
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{ID: "r", Start: time.Now()}))
			d := discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(d.h)
				h.ServeHTTP(d, req)
			}
		})
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
