package reqctx

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

func TestSetUpstreamHeaders(t *testing.T) {
	tests := []struct {
		name string
		info *Info
		in   http.Header
		want http.Header
	}{
		{name: "no info: identity headers still go", in: http.Header{"X-Consumer-Name": {"forged"}, "Accept": {"*/*"}},
			want: http.Header{"Accept": {"*/*"}}},
		{name: "request ID replaces a different one", info: &Info{ID: "abc"}, in: http.Header{"X-Request-Id": {"x", "y"}},
			want: http.Header{"X-Request-Id": {"abc"}}},
		{name: "request ID kept when equal", info: &Info{ID: "abc"}, in: http.Header{"X-Request-Id": {"abc"}},
			want: http.Header{"X-Request-Id": {"abc"}}},
		{name: "identity replaces forged values", info: &Info{ID: "r", Identity: &Identity{Consumer: "web", Groups: []string{"a", "b"}, Subject: "u1"}},
			in:   http.Header{"X-Consumer-Name": {"admin"}, "X-Consumer-Groups": {"root"}, "X-Anonymous-Consumer": {"true"}},
			want: http.Header{"X-Request-Id": {"r"}, "X-Consumer-Name": {"web"}, "X-Consumer-Groups": {"a,b"}, "X-Authenticated-Subject": {"u1"}}},
		// Kong's are the chain's to remove, before request transforms that may set them.
		{name: "Kong's identity headers are left", info: &Info{Identity: &Identity{Consumer: "web"}},
			in:   http.Header{"X-Consumer-Username": {"web"}, "Accept": {"*/*"}},
			want: http.Header{"X-Consumer-Name": {"web"}, "X-Consumer-Username": {"web"}, "Accept": {"*/*"}}},
		{name: "anonymous", info: &Info{Identity: &Identity{Anonymous: true, Consumer: "guest"}}, in: http.Header{},
			want: http.Header{"X-Consumer-Name": {"guest"}, "X-Anonymous-Consumer": {"true"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.info != nil {
				ctx = With(ctx, tt.info)
			}
			SetUpstreamHeaders(ctx, tt.in)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Errorf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
}
