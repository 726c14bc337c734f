package sizelimit

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/policies"
)

// backend is a fake upstream that records the body it received.
func backend(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			got = append(got, "ERR:"+err.Error())
		} else {
			got = append(got, string(b))
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func gateway(t *testing.T, c Config, next http.Handler) *httptest.Server {
	t.Helper()
	p, err := New("limit", c, policies.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(p.Wrap(next))
	t.Cleanup(s.Close)
	return s
}

func proxyTo(t *testing.T, s *httptest.Server) http.Handler {
	u, _ := url.Parse(s.URL)
	return httputil.NewSingleHostReverseProxy(u)
}

// unknownLength hides the length from the client so it sends the body chunked.
type unknownLength struct{ io.Reader }

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code + " " + e.Error.Message
}

func TestSizeLimit(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		body        string
		chunked     bool
		wantStatus  int
		wantBackend []string // nil: backend never called
	}{
		{name: "declared length under the limit passes", cfg: Config{MaxBytes: 10}, body: "0123456789", wantStatus: 200, wantBackend: []string{"0123456789"}},
		{name: "declared length over the limit: 413 without reading", cfg: Config{MaxBytes: 10}, body: "0123456789A", wantStatus: 413},
		{name: "chunked body exactly at the limit passes", cfg: Config{MaxBytes: 10}, body: "0123456789", chunked: true, wantStatus: 200, wantBackend: []string{"0123456789"}},
		{name: "chunked body over the limit: 413 while reading", cfg: Config{MaxBytes: 10}, body: strings.Repeat("x", 5000), chunked: true, wantStatus: 413},
		{name: "default limit is 128MiB", cfg: Config{}, body: "small", wantStatus: 200, wantBackend: []string{"small"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be, got := backend(t)
			gw := gateway(t, tt.cfg, proxyTo(t, be))
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = unknownLength{body}
			}
			req, _ := http.NewRequest(http.MethodPost, gw.URL, body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if tt.wantStatus == 413 {
				if c := errorCode(t, b); c != "REQUEST_TOO_LARGE Request size limit exceeded" {
					t.Errorf("error %q", c)
				}
			}
			if tt.wantBackend == nil {
				for _, g := range got() {
					if !strings.HasPrefix(g, "ERR:") && len(g) > int(tt.cfg.MaxBytes) {
						t.Errorf("backend received a whole oversized body (%d bytes)", len(g))
					}
				}
				if !tt.chunked && len(got()) > 0 {
					t.Errorf("backend called for a declared oversized body")
				}
				return
			}
			if strings.Join(got(), "|") != strings.Join(tt.wantBackend, "|") {
				t.Errorf("backend got %q, want %q", got(), tt.wantBackend)
			}
		})
	}
}

// A handler that reads the body itself and answers 500 on a read error still produces 413.
func TestChunkedOverLimitAnswerIs413WhateverTheHandlerSays(t *testing.T) {
	gw := gateway(t, Config{MaxBytes: 16}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if !asMaxBytes(err, &mbe) || mbe.Limit != 16 {
				t.Errorf("read error %v, want *http.MaxBytesError{16}", err)
			}
			w.Header().Set("Content-Type", "text/html")
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		t.Error("oversized chunked body read without error")
	}))
	req, _ := http.NewRequest(http.MethodPut, gw.URL, unknownLength{strings.NewReader(strings.Repeat("y", 100))})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if !resp.Close {
		t.Error("connection should close after an unread oversized stream")
	}
}

// A handler that never reads past the limit and answers is not disturbed.
func TestHandlerWithoutReadingIsUntouched(t *testing.T) {
	gw := gateway(t, Config{MaxBytes: 4}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	req, _ := http.NewRequest(http.MethodPost, gw.URL, unknownLength{strings.NewReader("abc")})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func asMaxBytes(err error, target **http.MaxBytesError) bool {
	e, ok := err.(*http.MaxBytesError)
	if ok {
		*target = e
	}
	return ok
}

// raw sends a hand-written request and returns the final status line, so tests control exactly
// which headers (Content-Length, Expect, Transfer-Encoding) are on the wire. With Expect, the body
// is sent only after a 100 Continue; bodySent reports whether it was.
func raw(t *testing.T, addr, head, body string) (status string, bodySent bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(addr, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if !strings.Contains(head, "Expect: 100-continue") {
		_, _ = io.WriteString(conn, body)
		bodySent = true
	}
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusContinue {
			return resp.Status, bodySent
		}
		_, _ = io.WriteString(conn, body)
		bodySent = true
	}
}

func TestExpectContinue(t *testing.T) {
	tests := []struct {
		name, body, want string
		wantSent         bool
		wantBackend      []string
	}{
		{name: "oversized: 417 and the body is never sent", body: "0123456789A", want: "417 Expectation Failed"},
		{name: "within the limit: 100 Continue, the body, 200", body: "01234", want: "200 OK", wantSent: true, wantBackend: []string{"01234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be, got := backend(t)
			gw := gateway(t, Config{MaxBytes: 10}, proxyTo(t, be))
			head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(tt.body)) + "\r\nExpect: 100-continue\r\n\r\n"
			status, sent := raw(t, gw.URL, head, tt.body)
			if status != tt.want || sent != tt.wantSent {
				t.Fatalf("status %q sent %v, want %q %v", status, sent, tt.want, tt.wantSent)
			}
			if g := got(); strings.Join(g, "|") != strings.Join(tt.wantBackend, "|") {
				t.Errorf("backend got %q, want %q", g, tt.wantBackend)
			}
		})
	}
}

func TestRequireContentLength(t *testing.T) {
	be, got := backend(t)
	gw := gateway(t, Config{MaxBytes: 100, RequireContentLength: true}, proxyTo(t, be))
	tests := []struct {
		name, head, body, want string
	}{
		{"POST without Content-Length: 411", "POST / HTTP/1.1\r\nHost: x\r\n\r\n", "", "411 Length Required"},
		{"POST with Content-Length passes", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "hi", "200 OK"},
		{"POST with Content-Length 0 passes", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "", "200 OK"},
		{"chunked POST passes", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "2\r\nhi\r\n0\r\n\r\n", "200 OK"},
		{"GET without Content-Length passes", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", "200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _ := raw(t, gw.URL, tt.head, tt.body); status != tt.want {
				t.Fatalf("status %q, want %q", status, tt.want)
			}
		})
	}
	if want := []string{"hi", "", "hi", ""}; strings.Join(got(), "|") != strings.Join(want, "|") {
		t.Errorf("backend got %q, want %q", got(), want)
	}
}

func TestValidate(t *testing.T) {
	var p confval.Problems
	(&Config{MaxBytes: -1}).Validate("policies.x.request-size-limit", &p)
	if len(p) != 1 || p[0].Path != "policies.x.request-size-limit.max_bytes" {
		t.Fatalf("problems %+v", p)
	}
	if _, err := New("x", Config{MaxBytes: -1}, policies.Deps{}); err == nil {
		t.Fatal("New accepted a negative size")
	}
}

func BenchmarkDeclaredLength(b *testing.B) {
	p, _ := New("x", Config{MaxBytes: 1 << 20}, policies.Deps{})
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("hello"))
	req.Header.Set("Content-Length", "5")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func BenchmarkChunked(b *testing.B) {
	p, _ := New("x", Config{MaxBytes: 1 << 20}, policies.Deps{})
	buf := make([]byte, 512)
	h := p.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		for {
			if _, err := r.Body.Read(buf); err != nil {
				return
			}
		}
	}))
	payload := strings.Repeat("x", 4096)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", unknownLength{strings.NewReader(payload)})
		req.ContentLength = -1
		h.ServeHTTP(w, req)
	}
}
