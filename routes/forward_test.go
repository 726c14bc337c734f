package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/reqctx"
	"github.com/portico-gw/portico/upstreams"
)

// These tests hold the forwarder (the pass-through hot path) to httputil.ReverseProxy's behaviour
// where the request-shape tests in proxy_test.go do not reach: the answer's fields, trailers, 1xx,
// query cleaning, Te, User-Agent, truncated and 101 answers, and a differential run against a
// plain ReverseProxy.

// fwClient is a client of its own, so that no test shares (or poisons) another's connections.
func fwClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// fwGateway serves one catch-all route to rt.
func fwGateway(t *testing.T, rt http.RoundTripper) *httptest.Server {
	t.Helper()
	gw, _ := gateway(t, []Config{{Name: "r", Upstream: "u"}}, Deps{Upstream: lookup(map[string]http.RoundTripper{"u": rt})})
	return gw
}

// fwReverseProxy is the reference: a plain ReverseProxy with the Rewrite hook the forwarder must
// behave like.
func fwReverseProxy(t *testing.T, backend *httptest.Server) *httptest.Server {
	t.Helper()
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = ""
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv
}

// rawAnswer is a backend that reads the request and then writes answer verbatim on the hijacked
// connection and closes it, so that the test controls every byte the forwarder gets.
func rawAnswer(t *testing.T, answer string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString(answer)
		_ = brw.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fwGet(t *testing.T, c *http.Client, rawURL string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// Hop-by-hop fields of the answer stay between the backend and the gateway: the fixed list and
// every field the backend's Connection names. Everything else passes, several values in order.
func TestForwardDropsAnswerHopByHopFields(t *testing.T) {
	hopByHop := []string{"Connection", "X-Secret", "X-Other-Secret", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Connection", "Upgrade", "Trailer"}
	check := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != 200 || body != "hello world" {
			t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, body, "hello world")
		}
		for _, k := range hopByHop {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("client got %s: %q, want it dropped", k, v)
			}
		}
		if v, ok := resp.Header["Transfer-Encoding"]; ok {
			t.Errorf("client got a Transfer-Encoding field %q in the header map", v)
		}
		if len(resp.TransferEncoding) > 1 || (len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] != "chunked") {
			t.Errorf("client's framing is Transfer-Encoding %q, want the gateway's own chunked (or none)", resp.TransferEncoding)
		}
		if resp.Close {
			t.Error("the client's connection is closing: the backend's Connection field reached it")
		}
		if got, want := resp.Header.Values("Set-Cookie"), []string{"a=1; Path=/", "b=2; Path=/"}; !slices.Equal(got, want) {
			t.Errorf("Set-Cookie = %q, want %q", got, want)
		}
		if got, want := resp.Header.Values("X-Multi"), []string{"one", "two", "three"}; !slices.Equal(got, want) {
			t.Errorf("X-Multi = %q, want %q", got, want)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain" {
			t.Errorf("Content-Type = %q, want text/plain", got)
		}
	}

	// Over the wire: what http.Transport hands the forwarder from a backend that sends them all.
	// (Not with "close" among the Connection tokens: http.ReadResponse then deletes the whole
	// Connection field, so neither ReverseProxy nor the forwarder learns which fields it named.)
	t.Run("backend over the wire", func(t *testing.T) {
		backend := rawAnswer(t, "HTTP/1.1 200 OK\r\n"+
			"Connection: keep-alive, x-secret\r\n"+
			"Connection: X-Other-Secret\r\n"+
			"X-Secret: 1\r\n"+
			"X-Other-Secret: 2\r\n"+
			"Keep-Alive: timeout=5, max=100\r\n"+
			"Proxy-Authenticate: Basic realm=\"backend\"\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: foo/1\r\n"+
			"Set-Cookie: a=1; Path=/\r\n"+
			"X-Multi: one\r\n"+
			"Set-Cookie: b=2; Path=/\r\n"+
			"X-Multi: two, three\r\n"+
			"Content-Type: text/plain\r\n"+
			"Transfer-Encoding: chunked\r\n"+
			"\r\n"+
			"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		gw := fwGateway(t, toServer(t, backend))
		resp, body := fwGet(t, fwClient(t), gw.URL+"/x")
		// "two, three" is one field line; split it for the order check.
		resp.Header["X-Multi"] = splitList(resp.Header["X-Multi"])
		check(t, resp, body)
	})

	// From a RoundTripper whose header map still carries the framing fields (http.Transport moves
	// Transfer-Encoding and Trailer out; another upstream layer need not).
	t.Run("header map from the upstream layer", func(t *testing.T) {
		rt := upstreamFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{
				StatusCode: 200,
				Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{
					"Connection":         {"close, x-secret", "X-Other-Secret"},
					"X-Secret":           {"1"},
					"X-Other-Secret":     {"2"},
					"Keep-Alive":         {"timeout=5"},
					"Proxy-Authenticate": {`Basic realm="backend"`},
					"Proxy-Connection":   {"keep-alive"},
					"Upgrade":            {"foo/1"},
					"Transfer-Encoding":  {"gzip, chunked"},
					"Trailer":            {"X-Checksum"},
					"Set-Cookie":         {"a=1; Path=/", "b=2; Path=/"},
					"X-Multi":            {"one", "two", "three"},
					"Content-Type":       {"text/plain"},
				},
				Body:          io.NopCloser(strings.NewReader("hello world")),
				ContentLength: -1,
				Request:       r,
			}, nil
		})
		gw := fwGateway(t, rt)
		resp, body := fwGet(t, fwClient(t), gw.URL+"/x")
		check(t, resp, body)
	})
}

func splitList(lines []string) []string {
	var out []string
	for _, l := range lines {
		for v := range strings.SplitSeq(l, ",") {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// Trailers reach the client, announced or not.
func TestForwardPassesTrailers(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		announced []string
		want      map[string]string
	}{
		{"announced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc123")
		}, []string{"X-Checksum"}, map[string]string{"X-Checksum": "abc123"}},
		{"unannounced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "body")
			w.(http.Flusher).Flush() // chunked: the only framing that carries trailers
			w.Header().Set(http.TrailerPrefix+"X-Late", "late-value")
		}, nil, map[string]string{"X-Late": "late-value"}},
		{"announced and unannounced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Checksum", "abc123")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late-value")
		}, []string{"X-Checksum"}, map[string]string{"X-Checksum": "abc123", "X-Late": "late-value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backend := httptest.NewServer(tc.handler)
			t.Cleanup(backend.Close)
			gw := fwGateway(t, toServer(t, backend))
			resp, err := fwClient(t).Get(gw.URL + "/t")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			for _, k := range tc.announced {
				if _, ok := resp.Trailer[k]; !ok {
					t.Errorf("trailer %s not announced to the client (Trailer keys %v)", k, slices.Collect(mapKeys(resp.Trailer)))
				}
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != "body" {
				t.Fatalf("body %q, %v", b, err)
			}
			for k, v := range tc.want {
				if got := resp.Trailer.Get(k); got != v {
					t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, v, resp.Trailer)
				}
				if _, ok := resp.Header[k]; ok {
					t.Errorf("trailer %s arrived in the header", k)
				}
			}
		})
	}
}

// trailerAtEOF is a response body that, like a transport's, fills in the trailer when it ends.
type trailerAtEOF struct {
	r   io.Reader
	res *http.Response
	set http.Header
}

func (b *trailerAtEOF) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.res.Trailer = b.set
	}
	return n, err
}

func (b *trailerAtEOF) Close() error { return nil }

// An answer of known length whose trailer only shows up at its end (as HTTP/2 allows) is still
// sent chunked, so that the trailer has a way to the client: ReverseProxy flushes for that.
func TestForwardTrailerAfterKnownLengthBody(t *testing.T) {
	rt := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		res := &http.Response{
			StatusCode: 200, Proto: "HTTP/2.0", ProtoMajor: 2,
			Header:        http.Header{"Content-Type": {"text/plain"}},
			ContentLength: 4,
			Request:       r,
		}
		res.Body = &trailerAtEOF{r: strings.NewReader("body"), res: res, set: http.Header{"X-Late": {"late-value"}}}
		return res, nil
	})
	gw := fwGateway(t, rt)
	resp, body := fwGet(t, fwClient(t), gw.URL+"/t")
	if body != "body" {
		t.Fatalf("body %q", body)
	}
	if got := resp.Trailer.Get("X-Late"); got != "late-value" {
		t.Errorf("trailer X-Late = %q, want late-value (Transfer-Encoding %q, trailers %v)", got, resp.TransferEncoding, resp.Trailer)
	}
}

// An answer of unknown length is flushed as it comes, like ReverseProxy does, not held back in
// the server's buffer until the backend is done.
func TestForwardFlushesUnknownLengthAnswer(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before the servers' cleanups, which wait for the handler
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, "first|")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "second")
	}))
	t.Cleanup(backend.Close)
	gw := fwGateway(t, toServer(t, backend))
	type part struct {
		resp *http.Response
		text string
		err  error
	}
	c := fwClient(t)
	first := make(chan part, 1)
	go func() {
		// The status line itself is held back by a gateway that does not flush.
		resp, err := c.Get(gw.URL + "/stream")
		if err != nil {
			first <- part{err: err}
			return
		}
		b := make([]byte, len("first|"))
		n, err := io.ReadFull(resp.Body, b)
		first <- part{resp, string(b[:n]), err}
	}()
	p := recv(t, first, "the first part while the backend still streams")
	if p.err != nil {
		t.Fatal(p.err)
	}
	defer p.resp.Body.Close()
	got, resp := p.text, p.resp
	unblock()
	rest, err := io.ReadAll(resp.Body)
	if got != "first|" || string(rest) != "second" || err != nil {
		t.Errorf("got %q then %q (%v)", got, rest, err)
	}
}

func mapKeys(h http.Header) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}
}

// A 103 Early Hints reaches the client with its Link fields; the final answer carries neither
// those nor loses what the gateway set before proxying.
func TestForwardRelaysEarlyHints(t *testing.T) {
	links := []string{"</style.css>; rel=preload; as=style", "</app.js>; rel=preload; as=script"}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, l := range links {
			h.Add("Link", l)
		}
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		h.Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "final")
	}))
	t.Cleanup(backend.Close)
	router, err := Build([]Config{{Name: "r", Upstream: "u"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)}), Logger: quietLogger(nil)})
	if err != nil {
		t.Fatal(err)
	}
	// The edge sets the request ID on the answer before the route runs.
	edge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(reqctx.HeaderRequestID, "req-123")
		router.ServeHTTP(w, r)
	})
	gw := httptest.NewServer(withInfo(edge, nil))
	t.Cleanup(func() {
		gw.Close()
		router.Close()
	})

	type info struct {
		code   int
		header textproto.MIMEHeader
	}
	var (
		mu   sync.Mutex
		got  []info
		req  *http.Request
		resp *http.Response
	)
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, info{code, textproto.MIMEHeader(http.Header(h).Clone())})
		return nil
	}}
	req, _ = http.NewRequest("GET", gw.URL+"/page", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err = fwClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].code != http.StatusEarlyHints {
		t.Fatalf("client got 1xx answers %v, want one 103", got)
	}
	if v := got[0].header["Link"]; !slices.Equal(v, links) {
		t.Errorf("103 Link = %q, want %q", v, links)
	}
	if resp.StatusCode != 200 || string(body) != "final" {
		t.Errorf("final answer %d %q, want 200 final", resp.StatusCode, body)
	}
	if v, ok := resp.Header["Link"]; ok {
		t.Errorf("final answer carries the 103's Link: %q", v)
	}
	if v := resp.Header.Get(reqctx.HeaderRequestID); v != "req-123" {
		t.Errorf("final answer X-Request-ID = %q, want req-123 (set before proxying)", v)
	}
}

// A query Go's parser would reject is re-encoded without the unparsable parts, exactly as
// ReverseProxy with a Rewrite hook sends it; a clean one goes through byte for byte.
func TestForwardCleansQueryLikeReverseProxy(t *testing.T) {
	backend, got := recordingBackend(t)
	gw := fwGateway(t, toServer(t, backend))
	rp := fwReverseProxy(t, backend)
	c := fwClient(t)
	tests := []struct{ raw, want string }{
		{"a=1;b=2", ""},
		{"a=1&b=%zz&c=3", "a=1&c=3"},
		{"z=1&a=1;b=2&y=%zz&c=3", "c=3&z=1"},
		{"q=%2", ""},
		{"q=a%", ""},
		{"z=2&a=1&y=two%20words&x=%41", "z=2&a=1&y=two%20words&x=%41"}, // clean: order and escapes kept
		{"k=v+w&k=2", "k=v+w&k=2"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			fwGet(t, c, gw.URL+"/q?"+tc.raw)
			viaGateway := recv(t, got, "request via the gateway").RawQuery
			fwGet(t, c, rp.URL+"/q?"+tc.raw)
			viaReverseProxy := recv(t, got, "request via ReverseProxy").RawQuery
			if viaGateway != viaReverseProxy {
				t.Errorf("backend got query %q via the gateway, %q via ReverseProxy", viaGateway, viaReverseProxy)
			}
			if viaGateway != tc.want {
				t.Errorf("backend got query %q, want %q", viaGateway, tc.want)
			}
		})
	}
}

// Te is hop-by-hop, but "trailers" is passed on: it says the client can take trailers.
func TestForwardTeTrailers(t *testing.T) {
	backend, got := recordingBackend(t)
	gw := fwGateway(t, toServer(t, backend))
	rp := fwReverseProxy(t, backend)
	c := fwClient(t)
	tests := []struct {
		name       string
		te, conn   string
		want       []string // nil: no Te field at all
		wantAbsent []string
	}{
		{"trailers", "trailers", "", []string{"trailers"}, nil},
		{"gzip", "gzip", "", nil, nil},
		{"trailers with a parameter", "gzip, trailers;q=1", "", nil, nil}, // not the bare token, for ReverseProxy either
		{"trailers among others", "gzip, Trailers", "", []string{"trailers"}, nil},
		{"listed in Connection", "trailers", "TE, X-Hop", []string{"trailers"}, []string{"Connection", "X-Hop"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			send := func(base string) received {
				req, _ := http.NewRequest("GET", base+"/te", nil)
				req.Header.Set("Te", tc.te)
				if tc.conn != "" {
					req.Header.Set("Connection", tc.conn)
					req.Header.Set("X-Hop", "1")
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return recv(t, got, "backend request")
			}
			viaGateway, viaReverseProxy := send(gw.URL), send(rp.URL)
			if g, r := viaGateway.Header["Te"], viaReverseProxy.Header["Te"]; !slices.Equal(g, r) {
				t.Errorf("backend got Te %q via the gateway, %q via ReverseProxy", g, r)
			}
			if g := viaGateway.Header["Te"]; !slices.Equal(g, tc.want) {
				t.Errorf("backend got Te %q, want %q", g, tc.want)
			}
			for _, k := range tc.wantAbsent {
				if v, ok := viaGateway.Header[k]; ok {
					t.Errorf("backend got %s: %q", k, v)
				}
			}
		})
	}
}

// The backend sees the client's User-Agent, or none when the client sent none: never Go's.
func TestForwardUserAgent(t *testing.T) {
	backend, got := recordingBackend(t)
	gw := fwGateway(t, toServer(t, backend))
	c := fwClient(t)
	for _, tc := range []struct {
		name string
		ua   string // "" sends no User-Agent field (the Go client's convention)
	}{{"none", ""}, {"x", "x"}} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", gw.URL+"/ua", nil)
			req.Header.Set("User-Agent", tc.ua)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := recv(t, got, "backend request")
			v, ok := r.Header["User-Agent"]
			switch {
			case tc.ua == "" && ok:
				t.Errorf("backend got User-Agent %q, want none", v)
			case tc.ua != "" && !slices.Equal(v, []string{tc.ua}):
				t.Errorf("backend got User-Agent %q, want %q", v, tc.ua)
			}
		})
	}
}

// An answer the backend cuts short must reach the client as an error, never as a clean, complete
// (and cacheable) body.
func TestForwardTruncatedAnswerIsNotComplete(t *testing.T) {
	tests := []struct {
		name     string
		declared bool // Content-Length: 100, else chunked
	}{
		{"declared length", true},
		{"chunked", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.declared {
					w.Header().Set("Content-Length", "100")
				}
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "0123456789")
				rc := http.NewResponseController(w)
				_ = rc.Flush()
				conn, _, err := rc.Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				_ = conn.Close()
			}))
			t.Cleanup(backend.Close)
			gw := fwGateway(t, toServer(t, backend))
			resp, err := fwClient(t).Get(gw.URL + "/cut")
			if err != nil {
				return // cut before the status line: not a complete answer either
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("client read a clean body %q (status %d, Content-Length %d), want an error", b, resp.StatusCode, resp.ContentLength)
			}
			if tc.declared && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("client error %v, want io.ErrUnexpectedEOF", err)
			}
			if len(b) >= 100 {
				t.Errorf("client read %d bytes", len(b))
			}
		})
	}
}

// A 101 to a request that asked for no upgrade is the backend's error: a 502 in the JSON shape.
func TestForwardUnaskedSwitchingProtocolsIsBadGateway(t *testing.T) {
	backend := rawAnswer(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo/1\r\nConnection: Upgrade\r\n\r\n")
	gw := fwGateway(t, toServer(t, backend))
	resp, body := fwGet(t, fwClient(t), gw.URL+"/no-upgrade")
	var v struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error.Code == "" {
		t.Fatalf("body %q is not the JSON error shape: %v", body, err)
	}
	if resp.StatusCode != http.StatusBadGateway || v.Error.Code != "BAD_GATEWAY" {
		t.Errorf("client got %d %s, want 502 BAD_GATEWAY", resp.StatusCode, v.Error.Code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if up := resp.Header.Get("Upgrade"); up != "" {
		t.Errorf("client got Upgrade %q", up)
	}
}

// A status line with three digits that are not a status code (net/http's parsers accept 000 to
// 999; RFC 9110 defines 100 to 599) is a broken answer: 502, not a ResponseWriter panic and a
// cut connection below 100, nor a 999 passed on to the client.
func TestForwardStatusOutsideTheRangeIsBadGateway(t *testing.T) {
	for _, status := range []string{"099", "000", "600", "999"} {
		backend := rawAnswer(t, "HTTP/1.1 "+status+" Odd\r\nContent-Length: 2\r\n\r\nok")
		for name, rt := range map[string]http.RoundTripper{"net/http": toServer(t, backend), "portico": upstreamTo(t, backend)} {
			gw := fwGateway(t, rt)
			resp, _ := fwGet(t, fwClient(t), gw.URL+"/x")
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("%s, backend status %s: client got %d, want 502", name, status, resp.StatusCode)
			}
		}
	}
}

// upstreamTo is backend through the upstream layer pass-through uses in production.
func upstreamTo(t *testing.T, backend *httptest.Server) http.RoundTripper {
	t.Helper()
	reg, err := upstreams.NewRegistry(map[string]upstreams.Config{"u": {Targets: []upstreams.TargetConfig{{URL: backend.URL}}}},
		upstreams.Options{Logger: quietLogger(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	u, _ := reg.Get("u")
	return u
}

// fwSeen is what the differential backend saw.
type fwSeen struct {
	Method, Path, RawPath, RawQuery, Host string
	ContentLength                         int64
	TransferEncoding                      []string
	Header                                http.Header
	Body                                  string
}

// fwAnswer is what a client got back.
type fwAnswer struct {
	Status           int
	ContentLength    int64
	TransferEncoding []string
	Header           http.Header
	Trailer          http.Header
	Body             string
}

// The same requests through the gateway and through a plain ReverseProxy reach the backend alike
// and come back alike, except for the fields Portico adds on purpose.
func TestForwardMatchesReverseProxy(t *testing.T) {
	seen := make(chan fwSeen, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- fwSeen{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.ContentLength,
			r.TransferEncoding, r.Header.Clone(), string(b)}
		q := r.URL.Query()
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/")
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Echo-Method", r.Method)
		if q.Has("trailer") {
			h.Set("Trailer", "X-Sum")
		}
		status := http.StatusOK
		if s := q.Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.WriteHeader(status)
		if n, _ := strconv.Atoi(q.Get("size")); n > 0 {
			_, _ = w.Write(bytes.Repeat([]byte("0123456789abcdef"), n/16))
		} else {
			_, _ = fmt.Fprintf(w, "%s %s %d bytes", r.Method, r.URL.RequestURI(), len(b))
		}
		if q.Has("trailer") {
			h.Set("X-Sum", "42")
		}
	}))
	t.Cleanup(backend.Close)
	rp := fwReverseProxy(t, backend)
	c := fwClient(t)
	// Portico's side runs twice: through a plain http.Transport, and through the upstream layer
	// pass-through uses in production (h1Transport's own request writer and response parser for
	// what they take, net/http's wire code for the rest).
	viaUpstreams := upstreamTo(t, backend)
	for _, via := range []struct {
		name string
		rt   http.RoundTripper
	}{{"http.Transport", toServer(t, backend)}, {"upstreams", viaUpstreams}} {
		t.Run(via.name, func(t *testing.T) { forwardMatchesReverseProxy(t, fwGateway(t, via.rt), rp, c, seen) })
	}
}

func forwardMatchesReverseProxy(t *testing.T, gw, rp *httptest.Server, c *http.Client, seen chan fwSeen) {
	type request struct {
		name, method, target string
		body                 io.Reader // nil: no body
		chunked              bool      // hide the body's length
		header               http.Header
	}
	tests := []request{
		{"get with query and repeated fields", "GET", "/items?x=1&y=two%20words&x=2", nil, false,
			http.Header{"Accept": {"text/plain", "application/json"}, "X-Multi": {"a", "b"}}},
		{"head", "HEAD", "/items/7", nil, false, nil},
		{"post with body", "POST", "/orders", strings.NewReader(`{"qty":3}`), false,
			http.Header{"Content-Type": {"application/json"}}},
		{"put chunked", "PUT", "/orders/7", strings.NewReader(strings.Repeat("p", 5000)), true,
			http.Header{"Content-Type": {"application/octet-stream"}}},
		{"post empty body", "POST", "/empty", strings.NewReader(""), false, nil},
		{"delete no content", "DELETE", "/orders/7?status=204", nil, false, nil},
		{"connection-listed and hop-by-hop fields", "GET", "/hop", nil, false, http.Header{
			"Connection":          {"X-Hop, keep-alive", "x-other-hop"},
			"X-Hop":               {"secret"},
			"X-Other-Hop":         {"secret"},
			"Keep-Alive":          {"timeout=5"},
			"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
			"Proxy-Connection":    {"keep-alive"},
			"Te":                  {"gzip, trailers"},
			"Upgrade":             {"foo/1"},
			"X-Kept":              {"kept"},
		}},
		{"forwarded fields", "GET", "/fwd", nil, false, http.Header{
			"Forwarded":         {"for=203.0.113.9;proto=https"},
			"X-Forwarded-For":   {"203.0.113.9"},
			"X-Forwarded-Host":  {"shop.example.com"},
			"X-Forwarded-Proto": {"https"},
			"X-Real-Ip":         {"203.0.113.9"},
		}},
		{"unparsable query, no user agent", "GET", "/q?a=1;b=2&c=%zz&d=4", nil, false,
			http.Header{"User-Agent": {""}}},
		{"large streamed answer with an error status", "GET", "/big?size=100000&status=404", nil, false, nil},
		{"trailers", "GET", "/trailer?trailer=1", nil, false, http.Header{"Te": {"trailers"}}},
		{"escaped path", "GET", "/files/a%2Fb%20c", nil, false, nil},
	}
	// Fields Portico sets on purpose, differently from a bare ReverseProxy.
	portico := []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id"}
	portico = append(portico, reqctx.IdentityHeaders...)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			send := func(base string) (fwSeen, fwAnswer) {
				var body io.Reader
				if tc.body != nil {
					// Each side reads its own copy.
					b, _ := io.ReadAll(tc.body)
					tc.body = bytes.NewReader(b)
					body = bytes.NewReader(b)
					if tc.chunked {
						body = io.MultiReader(body)
					}
				}
				req, err := http.NewRequest(tc.method, base+tc.target, body)
				if err != nil {
					t.Fatal(err)
				}
				for k, vv := range tc.header {
					req.Header[k] = vv
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("reading body: %v", err)
				}
				h := resp.Header.Clone()
				delete(h, "Date")
				ans := fwAnswer{resp.StatusCode, resp.ContentLength, resp.TransferEncoding, h, resp.Trailer, string(b)}
				s := recv(t, seen, "backend request")
				for _, k := range portico {
					delete(s.Header, k)
				}
				return s, ans
			}
			gwSeen, gwAnswer := send(gw.URL)
			rpSeen, rpAnswer := send(rp.URL)
			if g, r := fmt.Sprintf("%+v", gwSeen), fmt.Sprintf("%+v", rpSeen); g != r {
				t.Errorf("backend saw, via the gateway:\n  %s\nvia ReverseProxy:\n  %s", g, r)
			}
			if g, r := fmt.Sprintf("%+v", gwAnswer), fmt.Sprintf("%+v", rpAnswer); g != r {
				t.Errorf("client got, via the gateway:\n  %s\nvia ReverseProxy:\n  %s", g, r)
			}
		})
	}
}

// TestUpgradeToAnotherProtocolIsBadGateway: a backend that switches to a protocol the client did
// not ask for is answered 502, as ReverseProxy's own error handler would, not 500.
func TestUpgradeToAnotherProtocolIsBadGateway(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
	}))
	t.Cleanup(backend.Close)
	gw, _ := gateway(t, []Config{{Name: "ws", Upstream: "u"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)})})
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"BAD_GATEWAY"`) {
		t.Fatalf("status %d body %s, want 502 BAD_GATEWAY", resp.StatusCode, body)
	}
}

// TestForwardIgnoresLateEarlyHints: http.Transport may report a 1xx after RoundTrip has returned
// an error (golang/go#65123); the relay must not touch the response then, or it races the error
// answer (run with -race). Hints start as RoundTrip returns and go on while the error answer is
// written: one in the moment before the relay stops precedes the answer, which is allowed, so the
// first answer's hints are not counted; the next request on the connection must see none.
func TestForwardIgnoresLateEarlyHints(t *testing.T) {
	var wg sync.WaitGroup
	returned := make(chan struct{})
	var calls atomic.Int32
	rt := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) > 1 {
			return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}
		trace := httptrace.ContextClientTrace(r.Context())
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-returned
			for i := 0; i < 50; i++ {
				_ = trace.Got1xxResponse(http.StatusEarlyHints, textproto.MIMEHeader{"Link": {"</a.css>"}})
				time.Sleep(100 * time.Microsecond)
			}
		}()
		defer close(returned)
		return nil, errors.New("net/http: timeout awaiting response headers")
	})
	gw := fwGateway(t, rt)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	t.Cleanup(client.CloseIdleConnections)
	get := func() (int, int32) {
		t.Helper()
		var hints atomic.Int32
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(int, textproto.MIMEHeader) error { hints.Add(1); return nil },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/x", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, hints.Load()
	}
	if code, _ := get(); code != http.StatusInternalServerError {
		t.Fatalf("status %d, want the error answer", code)
	}
	wg.Wait()
	// The same connection (one per host) carries the next request.
	if code, hints := get(); code != http.StatusNoContent || hints != 0 {
		t.Fatalf("next request: status %d with %d early hints; want 204 and none (the late hints went out after the error answer)", code, hints)
	}
}

// TestForwardRemovedUserAgentStaysRemoved: a rule that removes the client's User-Agent must not
// let Go's own in.
func TestForwardRemovedUserAgentStaysRemoved(t *testing.T) {
	backend, got := recordingBackend(t)
	gw, _ := gateway(t, []Config{{Name: "r", Upstream: "u", RequestHeaders: HeaderOps{Remove: []string{"User-Agent"}}}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"u": toServer(t, backend)})})
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/x", nil)
	req.Header.Set("User-Agent", "client/1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ua, ok := recv(t, got, "backend request").Header["User-Agent"]; ok {
		t.Fatalf("backend got User-Agent %q, want none", ua)
	}
}

// A field name with whitespace before its colon is a broken answer (RFC 9112 5.1): net/http kept
// "Content-Length : 2" as a field "Content-Length ", so the length went unread (the answer ran
// until the connection closed) and the field went on to the client as written.
func TestForwardSpacedFieldNameIsBadGateway(t *testing.T) {
	backend := rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok")
	gw := fwGateway(t, upstreamTo(t, backend))
	resp, _ := fwGet(t, fwClient(t), gw.URL+"/x")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("client got %d, want 502", resp.StatusCode)
	}
}

// A backend's Content-Length on a 204 is not passed on (RFC 9110 8.6): net/http's HTTP/2 server
// would send it, and clients fail the stream.
func TestNoContentLengthOn204(t *testing.T) {
	be := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{"Content-Length": {"5"}, "X-Kept": {"1"}},
			Body: http.NoBody, Request: r}, nil
	})
	r, err := Build([]Config{{Name: "r", Match: MatchConfig{PathPrefix: "/"}, Upstream: "p"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"p": be})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/x", nil))
	if rec.Code != http.StatusNoContent || rec.Header().Get("Content-Length") != "" || rec.Header().Get("X-Kept") != "1" {
		t.Errorf("status %d, header %v; want 204 without Content-Length", rec.Code, rec.Header())
	}
}

type cutBody struct{ sent bool }

func (b *cutBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "abc"), nil
	}
	return 0, errors.New("connection reset by backend")
}
func (b *cutBody) Close() error { return nil }

// An answer the backend cut short went to the access log as a plain 200; the connection is cut
// for the client, and the log now says why.
func TestCutAnswerIsMarkedForTheLog(t *testing.T) {
	be := upstreamFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Length": {"100"}}, ContentLength: 100,
			Body: &cutBody{}, Request: r}, nil
	})
	r, err := Build([]Config{{Name: "r", Match: MatchConfig{PathPrefix: "/"}, Upstream: "p"}},
		Deps{Upstream: lookup(map[string]http.RoundTripper{"p": be})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seen := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		info := &reqctx.Info{ID: "x"}
		defer func() { seen <- info.ErrorCode }()
		r.ServeHTTP(w, req.WithContext(reqctx.With(req.Context(), info)))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("the cut answer read as complete")
	}
	if code := <-seen; code != "UPSTREAM_ANSWER_CUT" {
		t.Errorf("error code %q, want UPSTREAM_ANSWER_CUT", code)
	}
}

// TestOutboundHeaderDropsIdentitySpellings: CGI-style backends read X_Consumer_Username as
// X-Consumer-Username, so the underscore spellings of identity headers, Portico's and Kong's,
// never go upstream (reqctx.SetUpstreamHeaders removes the exact names).
func TestOutboundHeaderDropsIdentitySpellings(t *testing.T) {
	tests := []struct {
		name string
		key  string
		drop bool
	}{
		{"Portico's", "X_Consumer_Name", true},
		{"Kong's username", "X_Consumer_Username", true},
		{"Kong's consumer id", "X_consumer_id", true},
		{"Kong's custom id", "X_Consumer_Custom_Id", true},
		{"Kong's credential", "X_credential_identifier", true},
		{"Kong's groups", "X_Authenticated_Groups", true},
		{"Kong's scope", "x_authenticated_scope", true},
		{"Kong's user id", "X_Authenticated_Userid", true},
		{"another underscore field", "X_Trace_Id", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := outboundHeader(http.Header{tt.key: {"forged"}, "Accept": {"*/*"}})
			if _, ok := out[tt.key]; ok == tt.drop {
				t.Fatalf("%s forwarded = %v, want %v", tt.key, ok, !tt.drop)
			}
			if out.Get("Accept") != "*/*" {
				t.Fatalf("Accept lost: %v", out)
			}
		})
	}
}
