package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// benchBody is built exactly as /work/shared/bench/backend does (same map, same encoder), so a
// benchmark against this handler and one against that binary move the same bytes.
var benchBody = sync.OnceValue(func() []byte {
	items := make([]map[string]any, 10)
	for i := range items {
		items[i] = map[string]any{"id": i, "title": fmt.Sprintf("item-%02d", i), "desc": strings.Repeat("x", 60)}
	}
	body, err := json.Marshal(map[string]any{"source": "backend", "status": "ok", "items": items})
	if err != nil {
		panic(err) // a fixed literal that cannot fail to encode
	}
	return body
})

// BenchBody returns a copy of the fixed body NewBench serves (about 1 KiB of JSON), for asserting
// that a proxy passed it through unchanged.
func BenchBody() []byte { return slices.Clone(benchBody()) }

// NewBench returns the proxy-benchmark backend: the same fixed ~1 KiB JSON body (status ok, ten
// items) on every path and method, and /echo as the monolith answers it. Its Behavior's latency
// plays the role of the standalone backend's -delay flag. GET /health answers the fixed body too,
// like the standalone backend, so Latency applies to it.
func NewBench() *Service {
	s := &Service{Behavior: &Behavior{}, name: "bench", mux: http.NewServeMux(), stats: make(map[string]*routeStats)}
	body := benchBody()
	s.handle(RouteEcho, serveEcho)
	s.handle(RouteCatchAll, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, http.StatusOK, body)
	})
	return s
}
