package demo

import (
	"io"
	"net/http"
)

// catchAllBody is the monolith's answer to anything it has no specific route for.
type catchAllBody struct {
	Source string `json:"source"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query"`
}

// echoBody is the answer of /echo: what the backend received, to assert what a gateway forwards.
type echoBody struct {
	Method  string      `json:"method"`
	Host    string      `json:"host"`
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// NewMonolith returns the legacy monolith a strangler-fig migration starts from.
//
//	GET /health
//	GET /api/v1/users/{id}    byte-for-byte the users service's GET /users/{id} (404 included)
//	GET /api/v1/orders/{id}   byte-for-byte the orders service's GET /orders/{id} for seed orders
//	/echo                     any method: {"method","host","uri","headers","body"} as received
//	/ (anything else)         {"source":"monolith","method","path","query"}, status 200
//
// The identical answers let a mirrored comparison (monolith primary, new service shadow) report
// matches; a mismatch then means the gateway or the new service changed something.
func NewMonolith() *Service {
	s := newService("monolith")
	d := seedData()
	orders := &orderStore{seed: d.orders}
	s.handle(RouteLegacyUser, func(w http.ResponseWriter, r *http.Request) {
		serveUser(w, d, r.PathValue("id"))
	})
	s.handle(RouteLegacyOrder, func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		o, ok := orders.get(id)
		if !ok {
			notFound(w, "order", id)
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	s.handle(RouteEcho, serveEcho)
	s.handle(RouteCatchAll, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, catchAllBody{Source: "monolith", Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery})
	})
	return s
}

func serveEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, echoBody{Method: r.Method, Host: r.Host, URI: r.RequestURI, Headers: r.Header, Body: string(body)})
}
