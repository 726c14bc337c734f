package listener

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/confval"
)

const sendTimeoutForTests = 200 * time.Millisecond

// writeUntilError writes to w until a write fails and reports that error; a writer that never
// fails ends after 1 GiB, which no socket buffer holds.
func writeUntilError(w http.ResponseWriter) error {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for n := 0; n < 1<<30; n += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

// stalledClient connects with a small receive buffer, sends head and never reads.
func stalledClient(t *testing.T, addr string, head []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(head); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitWriteError waits for the handler's report; the bound is a liveness check far above the
// timeout under test, not a measurement.
func waitWriteError(t *testing.T, errs <-chan error) {
	t.Helper()
	select {
	case err := <-errs:
		if err == nil {
			t.Fatal("the handler wrote 1 GiB to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that reads nothing still held its handler after 10s")
	}
}

func TestSendTimeoutCutsAClientThatStopsReading(t *testing.T) {
	errs := make(chan error, 1)
	s := serveWith(t, Config{}, ServerConfig{SendTimeout: confval.Duration(sendTimeoutForTests)},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { errs <- writeUntilError(w) }))
	stalledClient(t, s.Addr(), []byte("GET / HTTP/1.1\r\nHost: portico.test\r\n\r\n"))
	waitWriteError(t, errs)
}

func TestSendTimeoutCutsAStalledHTTP2Connection(t *testing.T) {
	errs := make(chan error, 1)
	s := serveWith(t, Config{H2C: true}, ServerConfig{SendTimeout: confval.Duration(sendTimeoutForTests)},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { errs <- writeUntilError(w) }))
	// HTTP/2 by prior knowledge, with flow-control windows so large that only TCP can make the
	// server wait: the client then reads nothing.
	var h2 bytes.Buffer
	h2.WriteString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	frame := func(typ, flags byte, stream uint32, payload []byte) {
		var hdr [9]byte
		hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		hdr[3], hdr[4] = typ, flags
		binary.BigEndian.PutUint32(hdr[5:], stream)
		h2.Write(hdr[:])
		h2.Write(payload)
	}
	frame(0x4, 0, 0, []byte{0x00, 0x04, 0x7f, 0xff, 0xff, 0xff}) // SETTINGS_INITIAL_WINDOW_SIZE 2^31-1
	frame(0x8, 0, 0, binary.BigEndian.AppendUint32(nil, 0x7fffffff-65535))
	// HEADERS, END_STREAM|END_HEADERS: :method GET, :scheme http, :path /, :authority x (HPACK).
	frame(0x1, 0x5, 1, []byte{0x82, 0x86, 0x84, 0x41, 0x01, 'x'})
	stalledClient(t, s.Addr(), h2.Bytes())
	waitWriteError(t, errs)
}

func TestSendTimeoutLetsQuietStreamsAndIdleConnectionsBe(t *testing.T) {
	quiet := 3 * sendTimeoutForTests
	big := strings.Repeat("b", 64<<10) // more than net/http buffers: written during Write
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "early") // buffered until the flush after a quiet spell
		time.Sleep(quiet)
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush after a quiet spell: %v", err)
		}
		time.Sleep(quiet)
		_, _ = io.WriteString(w, big)
		time.Sleep(quiet)
		// Buffered, so net/http writes it after the handler returns, after another quiet spell.
		_, _ = io.WriteString(w, "tail")
		time.Sleep(quiet)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		// The tunnel outlives the handler, as with WebSocket libraries that serve it from a
		// goroutine of their own.
		go func() {
			defer conn.Close()
			time.Sleep(quiet)
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhello")
			if err := brw.Flush(); err != nil {
				t.Errorf("writing on the hijacked connection after a quiet spell: %v", err)
			}
		}()
	})
	s := serveWith(t, Config{}, ServerConfig{SendTimeout: confval.Duration(sendTimeoutForTests)}, mux)

	t.Run("a stream quiet for longer than the timeout", func(t *testing.T) {
		resp, err := http.Get("http://" + s.Addr() + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "early"+big+"tail" {
			t.Fatalf("read %d bytes, err %v; want the whole answer", len(body), err)
		}
	})

	t.Run("a keep-alive connection idle for longer than the timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		roundTrip := func(req string) *http.Response {
			t.Helper()
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatal(err)
			}
			return resp
		}
		if resp := roundTrip("GET /echo HTTP/1.1\r\nHost: portico.test\r\n\r\n"); resp.StatusCode != http.StatusOK {
			t.Fatalf("first request: status %d", resp.StatusCode)
		}
		time.Sleep(quiet)
		// net/http writes the 100 Continue itself, inside the handler, when the body is read.
		if _, err := io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: portico.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		cont, err := http.ReadResponse(br, nil)
		if err != nil || cont.StatusCode != http.StatusContinue {
			t.Fatalf("after an idle spell: %v, %v; want 100 Continue", cont, err)
		}
		if resp := roundTrip("hi"); resp.StatusCode != http.StatusOK {
			t.Fatalf("after 100 Continue: status %d", resp.StatusCode)
		}
		time.Sleep(quiet)
		// A malformed request after an idle spell still gets net/http's 400.
		if resp := roundTrip("GET /echo HTTP/1.1\r\nHost: portico.test\r\nBad Header: x\r\n\r\n"); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("malformed request after an idle spell: status %d, want 400", resp.StatusCode)
		}
	})

	t.Run("a hijacked connection keeps no deadline", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /hijack HTTP/1.1\r\nHost: portico.test\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(conn)
		if !strings.HasSuffix(string(got), "\r\n\r\nhello") {
			t.Fatalf("got %q, want the upgrade answer and hello", got)
		}
	})
}

// One large Write to a client that reads slowly but steadily takes longer than the timeout and
// must still succeed: progress, not the whole write, is timed. (The kernel reports a full socket
// writable again only once much of its buffer has drained, so the timeout here is long enough
// for that.)
func TestSendTimeoutLetsALargeWriteToASlowReaderFinish(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 16<<20)
	errs := make(chan error, 1)
	s := serveWith(t, Config{}, ServerConfig{SendTimeout: confval.Duration(2 * time.Second)},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := w.Write(body)
			errs <- err
		}))
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: portico.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 16<<10)
	total := 0
	for {
		n, err := conn.Read(buf)
		total += n
		if err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond) // at most 3.2 MB/s: 16 MiB takes longer than the timeout
	}
	if err := <-errs; err != nil {
		t.Fatalf("the write failed after %d bytes reached a client that kept reading: %v", total, err)
	}
	if total < len(body) {
		t.Fatalf("client got %d bytes, want at least %d", total, len(body))
	}
}

func TestSendTimeoutNeverExtendsWriteTimeout(t *testing.T) {
	errs := make(chan error, 1)
	s := serveWith(t, Config{}, ServerConfig{SendTimeout: confval.Duration(10 * time.Second), WriteTimeout: confval.Duration(300 * time.Millisecond)},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			time.Sleep(500 * time.Millisecond)
			_, err := w.Write(bytes.Repeat([]byte("x"), 64<<10))
			errs <- err
		}))
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	select {
	case err := <-errs:
		if err == nil {
			t.Fatal("a write after write_timeout succeeded: send_timeout extended the answer's deadline")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not finish")
	}
}
