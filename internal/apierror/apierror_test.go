package apierror

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/reqctx"
)

// TestWriteShapes: the same error is {"error": …} everywhere but on a GraphQL endpoint, where
// it is a GraphQL response without data, in the media type the BFF negotiated; status and extra
// headers are the same in both.
func TestWriteShapes(t *testing.T) {
	limited := &Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", Message: "rate limit exceeded",
		Header: http.Header{"Retry-After": {"1"}}}
	for _, tc := range []struct {
		name        string
		info        *reqctx.Info
		contentType string
		body        string
	}{
		{"no request info", nil, "application/json", `{"error":{"code":"RATE_LIMITED","message":"rate limit exceeded"}}`},
		{"a route", &reqctx.Info{ID: "r1"}, "application/json",
			`{"error":{"code":"RATE_LIMITED","message":"rate limit exceeded","request_id":"r1"}}`},
		{"a GraphQL endpoint, graphql-response+json", &reqctx.Info{ID: "r1", GraphQL: "application/graphql-response+json"},
			"application/graphql-response+json",
			`{"errors":[{"message":"rate limit exceeded","extensions":{"code":"RATE_LIMITED","request_id":"r1"}}]}`},
		{"a GraphQL endpoint, legacy json", &reqctx.Info{ID: "r1", GraphQL: "application/json"}, "application/json",
			`{"errors":[{"message":"rate limit exceeded","extensions":{"code":"RATE_LIMITED","request_id":"r1"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/web/graphql", nil)
			if tc.info != nil {
				r = r.WithContext(reqctx.With(r.Context(), tc.info))
			}
			rec := httptest.NewRecorder()
			Write(rec, r, limited)
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
				t.Errorf("status %d, Retry-After %q; want 429 with the error's header", rec.Code, rec.Header().Get("Retry-After"))
			}
			if got := rec.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if got := rec.Body.String(); got != tc.body+"\n" {
				t.Errorf("body %s, want %s", got, tc.body)
			}
			if graphql := tc.info != nil && tc.info.GraphQL != ""; graphql != (rec.Header().Get("Vary") == "Accept" && rec.Header().Get("Cache-Control") == "no-store") {
				t.Errorf("Vary %q, Cache-Control %q; want Accept and no-store on a GraphQL endpoint only", rec.Header().Get("Vary"), rec.Header().Get("Cache-Control"))
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("body is not JSON: %s", rec.Body)
			}
			if tc.info != nil && tc.info.ErrorCode != "RATE_LIMITED" {
				t.Errorf("info.ErrorCode = %q, want the code for the access log", tc.info.ErrorCode)
			}
		})
	}
}
