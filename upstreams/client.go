package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/propagation"

	"github.com/portico-gw/portico/internal/reqctx"
)

// MaxJSONBody caps the answers Client decodes, so a misbehaving backend cannot exhaust memory.
const MaxJSONBody = 10 << 20

// errorSnippet is how much of a non-2xx answer StatusError keeps for logs.
const errorSnippet = 512

// TraceContext is Portico's one trace propagator, W3C trace context: the edge extracts the
// client's traceparent with it and Client injects it into calls to upstreams. It is not
// otel.GetTextMapPropagator(): nothing in Portico sets that global, whose default propagates
// nothing, so resolver calls lost the client's trace while the edge read it.
var TraceContext propagation.TraceContext

// Client calls upstreams by name for resolvers. Every call goes through the upstream's RoundTrip,
// the same path pass-through routes use, and carries the request ID, identity and W3C trace
// context of ctx.
type Client struct {
	reg     *Registry
	maxBody int64
}

// NewClient returns a Client over r's upstreams.
func NewClient(r *Registry) *Client { return &Client{reg: r, maxBody: MaxJSONBody} }

// Do sends req to the named upstream with ctx, after setting the request ID, identity and trace
// headers on a copy of req. The scheme and host of req.URL are placeholders replaced by the
// chosen target's; the Host header is the target's too unless req.Host was set to something
// else than req.URL.Host. The caller closes the response body.
func (c *Client) Do(ctx context.Context, upstream string, req *http.Request) (*http.Response, error) {
	out := req.Clone(ctx)
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	if out.URL != nil && out.Host == out.URL.Host {
		// http.NewRequest copies the placeholder host into Host; the backend should see its own.
		out.Host = ""
	}
	return c.send(ctx, upstream, out)
}

// send propagates context headers onto req, which the caller owns, and sends it.
func (c *Client) send(ctx context.Context, upstream string, req *http.Request) (*http.Response, error) {
	var u *Upstream
	var ok bool
	if c != nil && c.reg != nil {
		u, ok = c.reg.Get(upstream)
	}
	if !ok {
		closeRequestBody(req)
		log := slog.Default()
		if c != nil && c.reg != nil {
			log = c.reg.log
		}
		log.Error("call to an unknown upstream; check the resolver wiring against the config", "upstream", upstream)
		return nil, &Error{Upstream: upstream, Kind: ErrUnknownUpstream}
	}
	reqctx.SetUpstreamHeaders(ctx, req.Header)
	TraceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return u.RoundTrip(req)
}

// GetJSON sends GET path (which may include a query) to the upstream and decodes a 2xx JSON
// answer into out. A non-2xx answer is a *StatusError; an undecodable one a 502 *Error.
func (c *Client) GetJSON(ctx context.Context, upstream, path string, out any) error {
	return c.SendJSON(ctx, upstream, http.MethodGet, path, nil, out)
}

// SendJSON sends in as a JSON body (none when in is nil) with method to path and decodes a 2xx
// answer into out (ignored when out is nil or the answer is 204).
func (c *Client) SendJSON(ctx context.Context, upstream, method, path string, in, out any) error {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request to upstream %q: %w", upstream, err)
		}
		body = bytes.NewReader(b)
	}
	// The host is a placeholder: RoundTrip replaces it with the chosen target's.
	req, err := http.NewRequestWithContext(ctx, method, "http://upstream"+path, body)
	if err != nil {
		return fmt.Errorf("building request to upstream %q: %w", upstream, err)
	}
	req.Host = ""
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(ctx, upstream, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, errorSnippet))
		return &StatusError{Upstream: upstream, Status: resp.StatusCode, Body: snippet}
	}
	limit := c.maxBody
	if limit <= 0 {
		limit = MaxJSONBody
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.CopyN(io.Discard, resp.Body, limit)
		return nil
	}
	// The answer is read whole into a pooled buffer and decoded with json.Unmarshal: a
	// json.Decoder per call allocated its own buffer and regrew it for every answer of a few KiB,
	// and reading to the end hands the connection back to the pool at once.
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	if n := resp.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead spare bytes before it reads EOF
	}
	lr := &io.LimitedReader{R: resp.Body, N: limit + 1}
	_, err = buf.ReadFrom(lr)
	if err == nil && lr.N <= 0 {
		err = fmt.Errorf("answer larger than %d bytes", limit)
	}
	if err == nil {
		if err = json.Unmarshal(buf.Bytes(), out); err != nil {
			err = fmt.Errorf("decoding JSON answer: %w", err)
		}
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(ctxErr, context.Canceled) {
				return &Error{Upstream: upstream, Kind: context.Canceled, Err: err}
			}
			return &Error{Upstream: upstream, Kind: ErrTimeout, Err: err}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Upstream: upstream, Kind: ErrTimeout, Err: err}
		}
		return &Error{Upstream: upstream, Kind: ErrBadGateway, Err: err}
	}
	return nil
}

// bodyBuffers holds the buffers SendJSON reads answers into. json.Unmarshal copies everything it
// keeps (strings, json.RawMessage), so a buffer is free again as soon as the call returns.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps a rare large answer from pinning its buffer in the pool.
const maxPooledBuffer = 64 << 10

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bodyBuffers.Put(b)
}
