package routes

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/upstreams"
)

// RFC 9110 15.2 and 10.1.1: an HTTP/1.0 client gets no 1xx (it would take it for the answer),
// and its Expect: 100-continue is ignored, not passed on. Behind a 1.0 keep-alive hop a client
// could otherwise make the next user on the connection read its answer.
func TestNoInformationalAnswersToHTTP10Clients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					switch {
					case req.Header.Get("Expect") != "":
						_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
					case req.URL.Path == "/hints":
						_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	reg, err := upstreams.NewRegistry(map[string]upstreams.Config{"u": {Targets: []upstreams.TargetConfig{{URL: "http://" + ln.Addr().String()}}}},
		upstreams.Options{Logger: quietLogger(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	u, _ := reg.Get("u")
	gw, _ := gateway(t, []Config{{Name: "r", Upstream: "u"}}, Deps{Upstream: lookup(map[string]http.RoundTripper{"u": u})})

	for name, raw := range map[string]string{
		"103 through the fast transport": "GET /hints HTTP/1.0\r\nHost: x\r\n\r\n",
		"100 for a 1.0 Expect":           "POST /up HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"1.1 still gets its early hints": "GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", gw.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, raw)
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			interim := strings.HasPrefix(line, "HTTP/1.0 1") || strings.HasPrefix(line, "HTTP/1.1 1")
			if want := strings.HasPrefix(name, "1.1"); interim != want {
				t.Errorf("first status line %q; want an interim answer: %v", strings.TrimSpace(line), want)
			}
		})
	}

	t.Run("keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", gw.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		_, _ = io.WriteString(c, "POST /attacker HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
		first, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, first.Body)
		if first.StatusCode != http.StatusOK {
			t.Fatalf("the 1.0 client read %d as its answer", first.StatusCode)
		}
	})
}
