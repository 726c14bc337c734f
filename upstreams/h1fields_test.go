package upstreams

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// The fast transport refuses what http.Transport refuses in field values (a control byte but
// HTAB) instead of sending a NUL on or turning CR/LF into spaces: an identity header from a
// token's sub could otherwise reach a backend that reads "admin" out of "admin\x00.evil".
func TestH1RefusesControlBytesInFieldValues(t *testing.T) {
	got := make(chan []byte, 8)
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		var head bytes.Buffer
		for {
			line, err := br.ReadSlice('\n')
			head.Write(line)
			if err != nil || len(line) <= 2 {
				break
			}
		}
		got <- head.Bytes()
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	rt := h1ForTest(t, time.Minute)
	for _, v := range []string{"admin\x00.evil.example", "admin\x01", "admin\x7f", "admin\r\nX-Consumer-Name: root", "tab\tis fine"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		req.Header["X-Authenticated-Subject"] = []string{v}
		resp, err := rt.RoundTrip(req)
		ok := v == "tab\tis fine"
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			head := <-got
			if !ok {
				t.Errorf("sent X-Authenticated-Subject %q: the backend received\n%q", v, head)
			}
		} else if ok {
			t.Errorf("%q refused: %v", v, err)
		}
		cancel()
	}
}
