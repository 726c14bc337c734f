package upstreams

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestWriteRequestMatchesRequestWrite holds writeRequest to net/http's own output: the same
// lines, whatever order the header map gives them in.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	tests := []struct {
		name   string
		method string
		url    string
		host   string
		header http.Header
		close  bool
	}{
		{name: "plain get", method: "GET", url: "http://10.0.0.1:8080/users/7", header: http.Header{"Accept": {"application/json"}}},
		{name: "empty method means GET", url: "http://10.0.0.1/", header: http.Header{}},
		{name: "post announces an empty body", method: "POST", url: "http://b/x", header: http.Header{}},
		{name: "put and patch too", method: "PATCH", url: "http://b/x", header: http.Header{}},
		{name: "delete does not", method: "DELETE", url: "http://b/x", header: http.Header{}},
		{name: "query and escaped path", url: "http://b/a%2Fb/c%20d?x=1&y=%20", header: http.Header{}},
		{name: "force query", url: "http://b/p?", header: http.Header{}},
		{name: "host field wins over URL host", url: "http://10.0.0.1/", host: "api.example.com", header: http.Header{}},
		{name: "ipv6 target", url: "http://[::1]:8080/", header: http.Header{}},
		{name: "several values and names", url: "http://b/", header: http.Header{
			"X-Forwarded-For": {"203.0.113.7, 10.0.0.2", "198.51.100.1"}, "Accept": {"*/*"}, "X-Request-Id": {"abc"}}},
		{name: "no user agent entry gets Go's", url: "http://b/", header: http.Header{"Accept": {"*/*"}}},
		{name: "empty user agent sends none", url: "http://b/", header: http.Header{"User-Agent": {""}}},
		{name: "user agent kept", url: "http://b/", header: http.Header{"User-Agent": {"curl/8.0"}}},
		// Newlines in values are refused, as http.Transport refuses them (TestH1RefusesControlBytesInFieldValues).
		{name: "surrounding whitespace trimmed", url: "http://b/", header: http.Header{"X-Pad": {"  v \t"}}},
		{name: "invalid field names dropped", url: "http://b/", header: http.Header{"Bad Name": {"v"}, "": {"v"}, "Ok": {"v"}}},
		{name: "framing fields never copied", method: "GET", url: "http://b/", header: http.Header{
			"Content-Length": {"10"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "Host": {"evil"}}},
		{name: "close", url: "http://b/", header: http.Header{}, close: true},
		{name: "close already asked", url: "http://b/", header: http.Header{"Connection": {"keep-alive, Close"}}, close: true},
		{name: "punycode host falls back", url: "http://b/", host: "bücher.example", header: http.Header{}},
		{name: "zone falls back", url: "http://[fe80::1%25eth0]:80/", header: http.Header{}},
		{name: "connect keeps its authority form", method: "CONNECT", url: "http://b:443", header: http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			req := &http.Request{Method: tt.method, URL: u, Host: tt.host, Header: tt.header, Close: tt.close}
			var want, got bytes.Buffer
			if err := req.Write(&want); err != nil {
				t.Fatal(err)
			}
			bw := bufio.NewWriter(&got)
			if err := writeRequest(bw, req); err != nil {
				t.Fatal(err)
			}
			_ = bw.Flush()
			if g, w := lines(got.String()), lines(want.String()); !slices.Equal(g, w) {
				t.Errorf("writeRequest:\n%q\nRequest.Write:\n%q", got.String(), want.String())
			}
		})
	}
}

// TestWriteRequestRefusesControlBytes keeps Request.Write's refusal of a URI that would break the
// request line.
func TestWriteRequestRefusesControlBytes(t *testing.T) {
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "b", Path: "/x", RawQuery: "a=1\r\nX: y"}, Header: http.Header{}}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := writeRequest(bw, req); err == nil {
		_ = bw.Flush()
		t.Fatalf("wrote %q", buf.String())
	}
}

// lines splits a request head into its request line and its sorted field lines.
func lines(head string) []string {
	l := strings.Split(head, "\r\n")
	slices.Sort(l[1:])
	return l
}
