package h1serve

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// body is a request body of declared length (chunked bodies are net/http's). As net/http's, it
// may be read by a goroutine the handler left behind (http.Transport's writer copies a proxied
// body and may still be at it when the answer has come back), so every read of the connection
// on its behalf holds mu, and once the connection moves on to the next request the body is
// closed and reads nothing more.
type body struct {
	mu     sync.Mutex
	c      *conn
	remain int64
	sawEOF bool
	closed bool
	// early: the handler left more unread than is worth reading off the wire; the connection
	// ends after the answer. tooBig: so it was already when the header went out.
	early, tooBig bool
	// closing: the request asked for the connection to close; nothing unread is read off.
	closing bool
	err     error
	// onEOF runs once the whole body was read: only then may the connection be watched for the
	// client going away (a read for that would take body bytes).
	onEOF func()

	// dmu guards ended, which hands the connection's read deadline from the body to the
	// watcher. It is not mu, which a blocked read holds: a handler cutting a stalled upload
	// short with a deadline must not wait for that read.
	dmu   sync.Mutex
	ended bool
}

// maxPostHandlerReadBytes is how much of an unread body is read off the wire, after the handler,
// to keep the connection (net/http's limit).
const maxPostHandlerReadBytes = 256 << 10

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.br.Read(p)
	b.remain -= int64(n)
	switch {
	case b.remain == 0:
		// With the last bytes, as net/http: a transport sees the end without another call.
		b.sawEOF, err = true, io.EOF
		if b.onEOF != nil {
			b.onEOF()
		}
	case err == io.EOF:
		// The stream ended before the declared length. As net/http: this read says so, later
		// ones read io.EOF, and nothing marks the connection to close for it (the answer has
		// no Connection: close; the connection ends at the next request's read).
		b.sawEOF = true
		if b.onEOF != nil {
			b.onEOF()
		}
		return n, io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// Close reads what is left, up to maxPostHandlerReadBytes, so that the connection can carry the
// next request; more than that is left, and the connection ends (net/http's body.Close).
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closeLocked()
}

func (b *body) closeLocked() error {
	if b.closed {
		return nil
	}
	var err error
	switch {
	case b.sawEOF, b.closing:
	case b.remain > maxPostHandlerReadBytes:
		b.early = true
	default:
		_, err = io.Copy(io.Discard, lockedBody{b})
	}
	b.closed = true
	return err
}

// lockedBody reads b with its lock already held.
type lockedBody struct{ b *body }

func (l lockedBody) Read(p []byte) (int, error) { return l.b.readLocked(p) }

// settle runs when the header is written (net/http's chunkWriter.writeHeader), unless the
// connection ends after the answer anyway: an unread rest of the body is read off the wire first,
// so that a client that sends its whole request before reading the answer cannot deadlock
// against it, and the body is closed; too much of it (tooBig: the answer says Connection: close),
// or a failed read, means the connection ends after the answer.
func (b *body) settle() (reusable, tooBig bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return b.sawEOF && !b.early, false
	case b.remain >= maxPostHandlerReadBytes:
		b.tooBig = true
		return false, true
	}
	if _, err := io.CopyN(io.Discard, lockedBody{b}, maxPostHandlerReadBytes+1); !errors.Is(err, io.EOF) || b.err != nil {
		return false, false
	}
	b.closed = true
	return true, false
}

// finished, after the handler and its answer, closes the body and reports whether the
// connection may carry another request, and if not whether the client may still be sending
// body bytes nobody reads (linger: net/http's closeWriteAndWait cases).
func (b *body) finished() (reusable, linger bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.closeLocked()
	reusable = err == nil && b.sawEOF && b.err == nil && !b.early
	return reusable, b.early || b.tooBig
}

// end marks the body read to its end: the connection's read deadline is no longer the body's,
// and the watcher clears it before its read (fire).
func (b *body) end() {
	b.dmu.Lock()
	defer b.dmu.Unlock()
	b.ended = true
}

// setReadDeadline bounds the reads of the body still to come (http.ResponseController).
func (b *body) setReadDeadline(t time.Time) error {
	b.dmu.Lock()
	defer b.dmu.Unlock()
	if b.ended {
		return nil
	}
	return b.c.nc.SetReadDeadline(t)
}
