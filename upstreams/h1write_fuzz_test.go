package upstreams

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/portico-gw/portico/internal/confval"
	"github.com/portico-gw/portico/internal/reqctx"
)

// FuzzWriteRequest holds writeRequest to Request.Write as its oracle. For any request it accepts,
// the bytes must read back with http.ReadRequest as exactly one body-less request, nothing after
// it (no field or request smuggled in through a value, the path or the host), and mean what
// Request.Write's bytes mean: the same method, request-URI, Host, framing, close and fields. It
// must refuse exactly the field values http.Transport refuses.
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "/users/7", "", "x=1", "10.0.0.1:8080", "", "Accept", "application/json", "X-Forwarded-For", "203.0.113.7", false)
	f.Add("POST", "/a/b c", "", "", "b", "api.example.com", "User-Agent", "", "X-Pad", "  v \t", true)
	f.Add("DELETE", "/a/b", "/a%2Fb", "y=%20", "[::1]:8080", "", "Connection", "keep-alive, Close", "Bad Name", "v", true)
	f.Add("PATCH", "/x", "", "a=1\r\nX: y", "b", "", "X-A", "a\r\nX-Injected: 1", "host", "evil", false)
	f.Add("GET", "/p", "", "", "b", "bücher.example", "Content-Length", "10", "Transfer-Encoding", "chunked", false)
	f.Add("OPTIONS", "", "", "", "b", "", "X-A", "a\x00b", "Trailer", "X", false)
	// A Host that is not simpleHost (here "b~"; net/http's server accepts "~" in a client's
	// Host, and IDN hosts and IPv6 zones fall back too) sent writeRequest to Request.Write before
	// validFields ran, and Request.Write passed the NUL on to the backend.
	f.Add("GET", "/", "", "", "b", "b~", "X-A", "a\x00b", "Accept", "*/*", false)
	f.Fuzz(func(t *testing.T, method, path, rawPath, rawQuery, urlHost, host, k1, v1, k2, v2 string, closeReq bool) {
		if method != "" && !confval.IsToken(method) {
			// writeRequest (like Request.Write) writes the method as given: http.Transport checks
			// it before writing, h1Transport does not. Out of scope here: methods come from
			// requests net/http's server parsed (and validated) or from code (cache: GET/HEAD).
			return
		}
		u := &url.URL{Scheme: "http", Host: urlHost, Path: path, RawPath: rawPath, RawQuery: rawQuery}
		h := http.Header{}
		h[k1] = append(h[k1], v1)
		h[k2] = append(h[k2], v2)
		req := &http.Request{Method: method, URL: u, Host: host, Header: h, Close: closeReq}

		var got bytes.Buffer
		bw := bufio.NewWriter(&got)
		err := writeRequest(bw, req)
		_ = bw.Flush()

		sendable := true
		for _, vs := range h {
			for _, v := range vs {
				sendable = sendable && reqctx.SendableValue(v)
			}
		}
		if !sendable {
			if err == nil {
				t.Fatalf("wrote a control byte in a field value: %q", got.String())
			}
			return
		}

		var want bytes.Buffer
		wantErr := req.Write(&want)
		if err != nil {
			if wantErr == nil {
				t.Fatalf("writeRequest: %v; Request.Write took it:\n%q", err, want.String())
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("Request.Write: %v; writeRequest wrote:\n%q", wantErr, got.String())
		}

		wantReq, wantRest, wantErr := readBack(want.Bytes())
		gotReq, gotRest, err := readBack(got.Bytes())
		if wantErr != nil {
			// Request.Write's bytes do not parse either (a raw space in the query, say); what
			// matters is that nothing was smuggled in.
			if err == nil && len(gotRest) > 0 {
				t.Fatalf("bytes after the request: %q in\n%q", gotRest, got.String())
			}
			return
		}
		if err != nil {
			t.Fatalf("ReadRequest: %v on\n%q\nRequest.Write's parsed:\n%q", err, got.String(), want.String())
		}
		if len(gotRest) != len(wantRest) {
			t.Fatalf("left after the request: %q, Request.Write's %q", gotRest, wantRest)
		}
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"Method", gotReq.Method, wantReq.Method},
			{"RequestURI", gotReq.RequestURI, wantReq.RequestURI},
			{"Host", gotReq.Host, wantReq.Host},
			{"ContentLength", gotReq.ContentLength, wantReq.ContentLength},
			{"Close", gotReq.Close, wantReq.Close},
			{"Header", normalHeader(gotReq.Header), normalHeader(wantReq.Header)},
		} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %#v, Request.Write's %#v\ngot:  %q\nwant: %q", c.name, c.got, c.want, got.String(), want.String())
			}
		}
	})
}

func readBack(b []byte) (*http.Request, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return nil, nil, err
	}
	rest, _ := io.ReadAll(br)
	return req, rest, nil
}

// normalHeader drops what differs between the two writers without changing the request's
// meaning: the Connection field (Close is compared instead; Request.Write may repeat "close")
// and an empty User-Agent (Request.Write sends "User-Agent:" for a blank one, writeRequest none).
func normalHeader(h http.Header) http.Header {
	h = h.Clone()
	delete(h, "Connection")
	if ua, ok := h["User-Agent"]; ok && len(ua) == 1 && ua[0] == "" {
		delete(h, "User-Agent")
	}
	return h
}
