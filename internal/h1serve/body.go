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
	// ends after the answer.
	early bool
	err   error
	// onEOF runs once the whole body was read: only then may the connection be watched for the
	// client going away (a read for that would take body bytes).
	onEOF func()
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
		err = io.ErrUnexpectedEOF
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
	case b.sawEOF:
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

// settle runs when the header is written (net/http's chunkWriter.writeHeader): an unread rest
// of the body is read off the wire first, so that a client that sends its whole request before
// reading the answer cannot deadlock against it, and the body is closed; too much of it, or a
// failed read, means the connection ends after the answer (tooBig: with Connection: close).
func (b *body) settle() (reusable, tooBig bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return b.sawEOF && !b.early, b.early
	case !b.sawEOF && b.remain >= maxPostHandlerReadBytes:
		return false, true
	}
	if _, err := io.CopyN(io.Discard, lockedBody{b}, maxPostHandlerReadBytes+1); !errors.Is(err, io.EOF) || b.err != nil {
		return false, false
	}
	b.closed = true
	return true, false
}

// finished reports, after the handler and its answer, whether the connection may carry another
// request, and closes the body.
func (b *body) finished() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.closeLocked()
	return err == nil && b.sawEOF && b.err == nil && !b.early
}

// setReadDeadline bounds the reads of the body still to come; under the lock, so that it cannot
// land after the body's end has cleared the deadline for the watcher.
func (b *body) setReadDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sawEOF || b.closed {
		return nil
	}
	return b.c.nc.SetReadDeadline(t)
}
