package transform

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/policies"
)

// These tests hold the promise a response body edit makes: a removed field never reaches the
// client, whatever the client asks for and whatever the upstream answers.

const secretDoc = `{"users":[{"nm":"ann","ssn":"123-45-6789"}]}`

// serveSecretDoc answers like a static file server: ranges, conditional requests, Content-Length,
// Accept-Ranges.
func serveSecretDoc(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"v1"`)
	http.ServeContent(w, r, "u.json", time.Unix(0, 0), strings.NewReader(secretDoc))
}

func removeSSN() ResponseConfig {
	return ResponseConfig{Body: ResponseBody{Remove: []string{"users.ssn"}}}
}

// A Range request used to make the upstream answer 206 with a slice that is not one JSON value,
// which passed untouched, removed field and all.
func TestBodyEditNotBypassedByRange(t *testing.T) {
	gw := responseGateway(t, removeSSN(), serveSecretDoc)
	for _, hdr := range []http.Header{
		{"Range": {"bytes=1-"}},
		{"Range": {"bytes=1-"}, "If-Range": {`"v1"`}},
		{"Range": {"bytes=0-5,20-"}}, // multipart/byteranges
	} {
		req, _ := http.NewRequest("GET", gw.URL, nil)
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "123-45-6789") {
			t.Fatalf("%v: status %d: removed field reached the client through a Range request: %s", hdr, resp.StatusCode, b)
		}
		if resp.StatusCode != 200 || string(b) != `{"users":[{"nm":"ann"}]}` {
			t.Errorf("%v: status %d body %s, want the whole edited document", hdr, resp.StatusCode, b)
		}
	}
}

// The client's Accept-Encoding used to reach the upstream, whose compressed answer passed
// untouched.
func TestBodyEditNotBypassedByAcceptEncoding(t *testing.T) {
	var sawAE string
	gw := responseGateway(t, removeSSN(), func(w http.ResponseWriter, r *http.Request) {
		sawAE = r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, secretDoc)
			_ = zw.Close()
			return
		}
		_, _ = io.WriteString(w, secretDoc)
	})
	req, _ := http.NewRequest("GET", gw.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	if strings.Contains(string(b), "123-45-6789") {
		t.Fatalf("removed field reached the client because it asked for gzip: %s", b)
	}
	if sawAE != "identity" {
		t.Errorf("upstream saw Accept-Encoding %q, want identity", sawAE)
	}
}

// The request the handler sees carries no Range or If-Range and asks for identity, while the
// caller's request is left as it was (outer policies and logs still see what the client sent).
func TestBodyEditAsksUpstreamForWholeIdentityAnswer(t *testing.T) {
	p, err := NewResponse("r", removeSSN(), policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Range", "bytes=0-1")
	req.Header.Set("If-Range", `"v1"`)
	req.Header.Set("Accept-Encoding", "gzip, br")
	p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" || r.Header.Get("If-Range") != "" || r.Header.Get("Accept-Encoding") != "identity" {
			t.Errorf("handler saw %v", r.Header)
		}
	})).ServeHTTP(httptest.NewRecorder(), req)
	if req.Header.Get("Range") != "bytes=0-1" || req.Header.Get("Accept-Encoding") != "gzip, br" {
		t.Errorf("caller's request was modified: %v", req.Header)
	}
}

// An upstream (or inner policy) that answers 206 or compressed JSON anyway is refused with a 502:
// the edit cannot be applied, and passing the body on would leak what it removes.
func TestBodyEditFailsClosedOnPartialOrEncodedAnswer(t *testing.T) {
	tests := []struct {
		name     string
		upstream http.HandlerFunc
	}{
		{name: "206 despite no Range", upstream: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Range", "bytes 1-44/45")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = io.WriteString(w, secretDoc[1:])
		}},
		{name: "206 multipart despite no Range", upstream: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "multipart/byteranges; boundary=x")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = io.WriteString(w, "--x\r\nContent-Type: application/json\r\n\r\n"+secretDoc+"\r\n--x--\r\n")
		}},
		{name: "gzip despite identity", upstream: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, secretDoc)
			_ = zw.Close()
		}},
		{name: "identity then gzip", upstream: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header()["Content-Encoding"] = []string{"identity", "gzip"}
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, secretDoc)
			_ = zw.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := responseGateway(t, removeSSN(), tt.upstream)
			req, _ := http.NewRequest("GET", gw.URL, nil)
			req.Header.Set("Accept-Encoding", "identity") // the client must not decompress anything
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct{ Code, Message, RequestID string } `json:"error"`
			}
			if resp.StatusCode != http.StatusBadGateway || json.Unmarshal(b, &e) != nil || e.Error.Code != "BAD_GATEWAY" {
				t.Fatalf("status %d body %q, want a 502 JSON error", resp.StatusCode, b)
			}
			for _, k := range []string{"Content-Encoding", "Content-Range"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("502 carries the upstream's %s: %q", k, v)
				}
			}
		})
	}
}

// HEAD cannot know the edited length, so it announces none rather than the upstream's, which
// differs from what GET sends.
func TestHeadContentLengthNeverContradictsGet(t *testing.T) {
	gw := responseGateway(t, removeSSN(), serveSecretDoc)
	head := func(method string) http.Header {
		req, _ := http.NewRequest(method, gw.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header
	}
	g, h := head("GET").Get("Content-Length"), head("HEAD").Get("Content-Length")
	if g != "24" {
		t.Fatalf("GET Content-Length %q, want 24 (the edited body)", g)
	}
	if h != "" && h != g {
		t.Errorf("Content-Length: GET %s, HEAD %s", g, h)
	}
}

// The edited body is another representation: a strong ETag from the upstream would claim it is
// byte-for-byte the upstream's. It is weakened (If-None-Match still revalidates), on GET and HEAD
// alike, and Accept-Ranges is dropped since ranges are no longer served.
func TestEditedBodyWeakensETag(t *testing.T) {
	gw := responseGateway(t, removeSSN(), serveSecretDoc)
	for _, method := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(method, gw.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("ETag"); got != `W/"v1"` {
			t.Errorf("%s: ETag %q, want W/\"v1\"", method, got)
		}
		if got := resp.Header.Get("Accept-Ranges"); got != "" {
			t.Errorf("%s: Accept-Ranges %q", method, got)
		}
	}
	// A body that passes untouched (not JSON) keeps its strong ETag.
	gw = responseGateway(t, removeSSN(), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"t1"`)
		_, _ = io.WriteString(w, "hi")
	})
	resp, err := http.Get(gw.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("ETag"); got != `"t1"` {
		t.Errorf("untouched body: ETag %q, want \"t1\"", got)
	}
}

// A client echoing the weakened ETag in If-Match (optimistic locking on a write) still matches
// the upstream's strong tag.
func TestWeakenedETagStillMatchesIfMatch(t *testing.T) {
	var sawIfMatch string
	gw := responseGateway(t, removeSSN(), func(w http.ResponseWriter, r *http.Request) {
		sawIfMatch = r.Header.Get("If-Match")
		w.WriteHeader(http.StatusNoContent)
	})
	req, _ := http.NewRequest("PUT", gw.URL, strings.NewReader(`{}`))
	req.Header.Set("If-Match", `W/"v1", "v2"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sawIfMatch != `"v1", "v2"` {
		t.Errorf("upstream saw If-Match %q, want \"v1\", \"v2\"", sawIfMatch)
	}
}

// $(header.X) renders the header as the response transform received it, even though an inner
// request-transform removed it before the upstream was called.
func TestResponseTemplateReadsRequestHeaderAsReceived(t *testing.T) {
	for _, cfg := range []ResponseConfig{
		{Headers: Operations{Add: map[string]string{"X-Echo": "$(header.X-Token)"}}},
		{Headers: Operations{Add: map[string]string{"X-Echo": "$(header.X-Token)"}}, Body: ResponseBody{Wrap: true}},
	} {
		resp, err := NewResponse("resp", cfg, policies.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		req, err := NewRequest("req", RequestConfig{Headers: Operations{Remove: []string{"X-Token"}}}, policies.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		var upstreamSaw string
		h := policies.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			upstreamSaw = r.Header.Get("X-Token")
			w.WriteHeader(200)
		}), []policies.Policy{req, resp}, nil, nil)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Token", "abc")
		r = r.WithContext(reqctx.With(r.Context(), &reqctx.Info{ID: "id"}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if upstreamSaw != "" {
			t.Fatalf("request-transform did not remove X-Token: %q", upstreamSaw)
		}
		if got := w.Header().Get("X-Echo"); got != "abc" {
			t.Fatalf("X-Echo = %q, want the X-Token the client sent (abc)", got)
		}
	}
}
