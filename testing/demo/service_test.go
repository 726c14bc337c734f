package demo

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestUnroutedRequestsAnswerJSON(t *testing.T) {
	svc := NewUsers()
	wantError(t, call(t, svc, "GET", "/nope", ""), 404, "NOT_FOUND", "GET /nope")
	rec := call(t, svc, "DELETE", "/users/u1", "")
	wantError(t, rec, 405, "METHOD_NOT_ALLOWED", "DELETE")
	if allow := rec.Header().Get("Allow"); allow == "" {
		t.Error("405 without Allow")
	}
	if n := svc.TotalRequests(); n != 2 {
		t.Errorf("TotalRequests = %d, want 2 (unrouted requests count too)", n)
	}
}

func TestHealth(t *testing.T) {
	for _, svc := range []*Service{NewUsers(), NewOrders(), NewPayments(), NewNotifications(), NewMonolith()} {
		t.Run(svc.Name(), func(t *testing.T) {
			got := decode[map[string]string](t, call(t, svc, "GET", "/health", ""), 200)
			if got["status"] != "ok" || got["service"] != svc.Name() {
				t.Errorf("health = %v", got)
			}
		})
	}
}

func TestCountersAndHeaders(t *testing.T) {
	svc := NewUsers()
	call(t, svc, "GET", "/users/u1", "", "X-Request-ID", "r1")
	call(t, svc, "GET", "/users/u2", "", "X-Request-ID", "r2", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	call(t, svc, "GET", "/users?ids=u1", "", "X-Consumer-Name", "web-app")
	call(t, svc, "GET", "/health", "", "X-Request-ID", "probe")
	call(t, svc, "GET", "/missing", "")

	counts := map[string]int64{RouteUser: 2, RouteUsers: 1, RouteHealth: 1, RouteCurrentUser: 0, "GET /users/x": -1, RouteOrder: -1}
	for pattern, want := range counts {
		if got := svc.Requests(pattern); got != want {
			t.Errorf("Requests(%q) = %d, want %d", pattern, got, want)
		}
	}
	if got := svc.TotalRequests(); got != 5 {
		t.Errorf("TotalRequests = %d, want 5", got)
	}

	// The health probe came last but does not hide the last API request.
	if h := svc.LastHeaders(); h.Get("X-Request-ID") != "" || h.Get("X-Consumer-Name") != "" {
		t.Errorf("LastHeaders = %v, want the /missing request's (no X-Request-ID)", h)
	}
	if h := svc.LastHeadersFor(RouteUser); h.Get("X-Request-ID") != "r2" || h.Get("Traceparent") == "" {
		t.Errorf("LastHeadersFor(user) = %v", h)
	}
	if h := svc.LastHeadersFor(RouteUsers); h.Get("X-Consumer-Name") != "web-app" {
		t.Errorf("LastHeadersFor(users) = %v", h)
	}
	if h := svc.LastHeadersFor(RouteHealth); h.Get("X-Request-ID") != "probe" {
		t.Errorf("LastHeadersFor(health) = %v", h)
	}
	h := svc.LastHeadersFor(RouteUser)
	h.Set("X-Request-ID", "changed")
	if svc.LastHeadersFor(RouteUser).Get("X-Request-ID") != "r2" {
		t.Error("LastHeadersFor returned the recorded map, not a copy")
	}

	svc.ResetCounts()
	if svc.TotalRequests() != 0 || svc.Requests(RouteUser) != 0 || svc.LastHeaders() != nil || svc.LastHeadersFor(RouteUser) != nil {
		t.Error("ResetCounts left counts or headers behind")
	}
	if !slices.Contains(svc.Routes(), RouteUsers) || len(NewMonolith().Routes()) != 5 {
		t.Errorf("Routes = %v", svc.Routes())
	}
}

func TestLatency(t *testing.T) {
	svc := NewUsers()
	if err := svc.Behavior.SetLatency(40 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	decode[User](t, call(t, svc, "GET", "/users/u1", ""), 200)
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Errorf("answered after %v, before the 40ms latency", took)
	}

	// Health stays fast, so a slow API behind a passing health check can be modelled.
	if err := svc.Behavior.SetLatency(time.Hour); err != nil {
		t.Fatal(err)
	}
	decode[map[string]string](t, call(t, svc, "GET", "/health", ""), 200)

	// A caller that goes away ends the wait at once, and nothing is written.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/users/u1", nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		svc.ServeHTTP(rec, req)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("latency wait ignored the cancelled context")
	}
	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q to a caller that left", rec.Body)
	}
}

func TestLatencyOverRealHTTPIsCancelledByClient(t *testing.T) {
	svc := NewOrders()
	svc.Behavior.SetLatency(time.Hour)
	srv := httptest.NewServer(svc)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/orders/o1", nil)
	if _, err := srv.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	// Server-side, the handler returns once the connection is gone; Close would block otherwise.
	srv.Close()
}

func TestErrorRate(t *testing.T) {
	const n = 1000
	run := func(svc *Service) (failed int) {
		for range n {
			rec := call(t, svc, "GET", "/payments/p1", "")
			switch rec.Code {
			case 200:
			case svc.Behavior.ErrorStatus():
				failed++
			default:
				t.Fatalf("unexpected %d %s", rec.Code, rec.Body)
			}
		}
		return failed
	}
	for _, rate := range []float64{0, 0.1, 0.3, 0.5, 1} {
		t.Run(strconv.FormatFloat(rate, 'f', -1, 64), func(t *testing.T) {
			svc := NewPayments()
			svc.Behavior.SetErrorRate(rate)
			failed := run(svc)
			if share := float64(failed) / n; math.Abs(share-rate) > 0.05 {
				t.Errorf("rate %v: %d of %d failed", rate, failed, n)
			}
			// Same seed, same sequence: the failures are reproducible.
			svc.Behavior.Seed(DefaultSeed)
			if again := run(svc); again != failed {
				t.Errorf("rate %v: %d failed on the second run, %d on the first", rate, again, failed)
			}
			if got := svc.Requests(RoutePayment); got != 2*n {
				t.Errorf("counted %d requests, want %d including the failed ones", got, 2*n)
			}
		})
	}

	svc := NewPayments()
	svc.Behavior.SetErrorRate(1)
	wantError(t, call(t, svc, "GET", "/payments/p1", ""), 503, "INJECTED_FAILURE")
	decode[map[string]string](t, call(t, svc, "GET", "/health", ""), 200)
	if err := svc.Behavior.SetErrorStatus(504); err != nil {
		t.Fatal(err)
	}
	wantError(t, call(t, svc, "GET", "/payments/p1", ""), 504, "INJECTED_FAILURE")
}

func TestBehaviorRejectsBadInput(t *testing.T) {
	var b Behavior
	tests := []struct {
		name string
		err  error
	}{
		{"negative latency", b.SetLatency(-time.Second)},
		{"negative rate", b.SetErrorRate(-0.1)},
		{"rate above 1", b.SetErrorRate(1.5)},
		{"NaN rate", b.SetErrorRate(math.NaN())},
		{"2xx error status", b.SetErrorStatus(200)},
		{"status out of range", b.SetErrorStatus(600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if b.Latency() != 0 || b.ErrorRate() != 0 || b.ErrorStatus() != 503 {
		t.Errorf("rejected input changed the behaviour: %v %v %v", b.Latency(), b.ErrorRate(), b.ErrorStatus())
	}
}

func TestDown(t *testing.T) {
	svc := NewUsers()
	svc.Behavior.SetDown(true)
	for _, target := range []string{"/health", "/users/u1", "/nowhere"} {
		wantError(t, call(t, svc, "GET", target, ""), 503, "UNAVAILABLE", "users is down")
	}
	if svc.Requests(RouteHealth) != 1 || svc.Requests(RouteUser) != 1 || svc.TotalRequests() != 3 {
		t.Errorf("requests refused while down were not counted")
	}
	svc.Behavior.SetDown(false)
	decode[User](t, call(t, svc, "GET", "/users/u1", ""), 200)
}

func TestDropClosesTheConnection(t *testing.T) {
	svc := NewUsers()
	srv := httptest.NewServer(svc)
	defer srv.Close()
	svc.Behavior.SetDrop(true)
	for _, path := range []string{"/health", "/users/u1"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s answered %d, want no answer", path, resp.StatusCode)
		}
	}
	svc.Behavior.SetDrop(false)
	resp, err := srv.Client().Get(srv.URL + "/users/u1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestReset(t *testing.T) {
	svc := NewOrders()
	svc.Behavior.SetLatency(time.Second)
	svc.Behavior.SetErrorRate(0.5)
	svc.Behavior.SetDown(true)
	call(t, svc, "GET", "/orders/o1", "")
	svc.Reset()
	if b := svc.Behavior; b.Latency() != 0 || b.ErrorRate() != 0 || b.Down() || b.Drop() || svc.TotalRequests() != 0 {
		t.Fatal("Reset left behaviour or counts behind")
	}
	decode[Order](t, call(t, svc, "GET", "/orders/o1", ""), 200)
}

// TestBehaviorIsSafeUnderTraffic flips every switch while requests flow; run with -race.
func TestBehaviorIsSafeUnderTraffic(t *testing.T) {
	svc := NewNotifications()
	srv := httptest.NewServer(svc)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := srv.Client().Get(srv.URL + "/notifications/count?user_id=u3")
				if err == nil {
					resp.Body.Close()
				}
				svc.LastHeaders()
				svc.Requests(RouteNotificationCount)
			}
		})
	}
	for i := range 200 {
		svc.Behavior.SetErrorRate(float64(i%3) / 2)
		svc.Behavior.SetDown(i%5 == 0)
		svc.Behavior.SetLatency(time.Duration(i%2) * time.Microsecond)
		if i%50 == 0 {
			svc.Reset()
		}
	}
	cancel()
	wg.Wait()
}
