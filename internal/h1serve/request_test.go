package h1serve

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

// Each head is either taken here (and must then read exactly as net/http reads it) or left to
// net/http; which is which is part of the contract, so the table says.
var heads = []struct {
	head  string
	taken bool
}{
	{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
	{"GET /p/a%20th?q=1&r=%41 HTTP/1.1\r\nHost: a.example:8080\r\nAccept: */*\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n", true},
	{"HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true},
	{"DELETE /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
	{"GET /x HTTP/1.1\r\nHost: a\r\nuser-agent:   spaced\t \r\nx_under: 1\r\n\r\n", true},
	{"OPTIONS /x HTTP/1.1\r\nHost: [::1]:80\r\nOrigin: https://o\r\n\r\n", true},
	{"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", true},
	{"GET /x HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n", true},
	{"GET /x HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", true},

	{"GET /x HTTP/1.0\r\nHost: a\r\n\r\n", false},            // HTTP/1.0 keep-alive rules
	{"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", false},    // absolute form
	{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false},         // asterisk form
	{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", false}, // authority form
	{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false},              // HTTP/2 preface
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n", true},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", true},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", false},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", false},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", false},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", false},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false},
	{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true},
	{"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false}, // chunked
	{"GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false},
	{"GET /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", false},
	{"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, x-private\r\n\r\n", false}, // other connection options
	{"GET /x HTTP/1.1\r\n\r\n", false},                                            // no Host
	{"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},                      // two
	{"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", false},                               // invalid Host
	{"GET /x HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n", false},
	{"GET /x HTTP/1.1\r\nHost: a\r\nX-Sp : 1\r\n\r\n", false}, // space before the colon
	{"GET /x HTTP/1.1\r\nHost: a\r\nX-Fold: 1\r\n  2\r\n\r\n", false},
	{"GET /x HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n", false},
	{"GET /x HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", false},
	{"G@T /x HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"GET  /x HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"GET /x  HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"GET /x HTTP/1.1 \r\nHost: a\r\n\r\n", false},
	{"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", false}, // not a URI
	{"get /x HTTP/1.1\r\nHost: a\r\n\r\n", true},    // a token; methods are case-sensitive
}

func TestParseHeadAgreesWithNetHTTP(t *testing.T) {
	for _, tc := range heads {
		got, _, _, ok := parseHead([]byte(tc.head), "192.0.2.1:1234")
		if ok != tc.taken {
			t.Errorf("%q: taken = %v, want %v", tc.head, ok, tc.taken)
			continue
		}
		if ok {
			sameAsNetHTTP(t, []byte(tc.head), got)
		}
	}
}

// sameAsNetHTTP checks that a head parseHead took reads the same through http.ReadRequest.
func sameAsNetHTTP(t *testing.T, head []byte, got *http.Request) {
	t.Helper()
	want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		t.Fatalf("%q: taken here but net/http refuses it: %v", head, err)
	}
	if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
		got.URL.String() != want.URL.String() || got.Close != want.Close || got.ContentLength != want.ContentLength ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor {
		t.Fatalf("%q: read as %s %s host %q close %v, net/http reads %s %s host %q close %v",
			head, got.Method, got.URL, got.Host, got.Close, want.Method, want.URL, want.Host, want.Close)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("%q: header %v, net/http reads %v", head, got.Header, want.Header)
	}
}

// FuzzParseHead: whatever head parseHead takes, net/http must read the same way.
func FuzzParseHead(f *testing.F) {
	for _, tc := range heads {
		f.Add([]byte(tc.head))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		end := bytes.Index(head, crlfcrlf)
		if end < 0 || bareLF(head[:end+4]) {
			return // readHead never hands such a head to parseHead
		}
		head = head[:end+4]
		if got, _, _, ok := parseHead(head, "192.0.2.1:1234"); ok {
			sameAsNetHTTP(t, head, got)
		}
	})
}
