// Package upstreams is the only way Portico code reaches a backend. A Registry holds the
// upstreams of one config snapshot; each Upstream is an http.RoundTripper that picks a healthy
// target (round robin, smooth weighted round robin, least connections, consistent hash or random
// with two choices), enforces connect, response-header and total timeouts, retries on another
// target within a retry budget, ejects failing targets, probes them actively, trips a circuit
// breaker, and records per-target metrics. The pass-through proxy uses an Upstream as its
// Transport; resolvers call the same stack through Client.
//
// Errors are *Error (or *StatusError from Client) and carry the HTTP status and code a client
// should see: 503 when no target is available, the circuit is open or the retry budget is spent;
// 504 on timeouts; 502 on refused or broken connections and bad answers.
package upstreams
