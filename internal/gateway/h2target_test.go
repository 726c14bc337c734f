package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/listener"
)

// An HTTP/2 :path may carry a space that no HTTP/1.1 request line may: it is refused at the edge
// with 400 instead of splitting the request line Portico writes upstream ("GET /x?a HTTP/1.1 b
// HTTP/1.1"), which a lenient backend would read as another target than the one routed.
func TestH2SpaceInTargetIsRefused(t *testing.T) {
	lines := make(chan string, 4)
	beAddr := serveRaw(t, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		lines <- strings.TrimRight(line, "\r\n")
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	g, _ := newGateway(t, cfg("http://"+beAddr, "access_log: {enabled: false}"))
	addr := listen(t, g, listener.Config{Address: "127.0.0.1:0", H2C: true})

	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: p}}
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"a HTTP/1.1 b", http.StatusBadRequest},
		{"a=1", http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
		req.URL.RawQuery = tc.query
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Fatalf("query %q: status %d, want %d", tc.query, res.StatusCode, tc.status)
		}
		if tc.status == http.StatusOK {
			select {
			case line := <-lines:
				if line != "GET /x?a=1 HTTP/1.1" {
					t.Errorf("request line %q", line)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("backend saw no request")
			}
		}
	}
	select {
	case line := <-lines:
		t.Fatalf("the refused request reached the backend as %q", line)
	default:
	}
}
