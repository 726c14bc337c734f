package demo

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, map[string]any, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, nil
}

func TestStartAll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := StartAll(ctx, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	urls := c.URLs()
	if len(urls) != len(Names) {
		t.Fatalf("URLs = %v", urls)
	}
	for _, name := range Names {
		url := c.URL(name)
		if !strings.HasPrefix(url, "http://127.0.0.1:") || urls[name] != url || c.Service(name).Name() != name {
			t.Fatalf("%s: url %q, service %v", name, url, c.Service(name))
		}
		status, body, err := get(t, url+"/health")
		if err != nil || status != 200 || body["service"] != name {
			t.Fatalf("%s health: %d %v %v", name, status, body, err)
		}
	}
	if c.URL("nope") != "" || c.Service("nope") != nil {
		t.Error("unknown name resolved")
	}
	if status, body, _ := get(t, c.URL(NameUsers)+"/users/u3"); status != 200 || body["id"] != "u3" {
		t.Errorf("users/u3 = %d %v", status, body)
	}

	// Really down: connection refused, then back on the same URL with state intact.
	usersURL := c.URL(NameUsers)
	if err := c.Stop(NameUsers); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(t, usersURL+"/health"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("stopped service: err = %v, want connection refused", err)
	}
	if err := c.Stop(NameUsers); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := c.Restart(NameUsers); err != nil {
		t.Fatal(err)
	}
	if status, _, err := get(t, usersURL+"/health"); err != nil || status != 200 || c.URL(NameUsers) != usersURL {
		t.Fatalf("restarted: %d %v", status, err)
	}
	if c.Users.Requests(RouteUser) != 1 {
		t.Errorf("counts lost across restart: %d", c.Users.Requests(RouteUser))
	}
	if err := c.Stop("nope"); err == nil {
		t.Error("Stop of an unknown service succeeded")
	}
	if err := c.Restart("nope"); err == nil {
		t.Error("Restart of an unknown service succeeded")
	}

	c.Orders.Behavior.SetDown(true)
	c.Reset()
	if c.Orders.Behavior.Down() || c.Users.TotalRequests() != 0 {
		t.Error("Cluster.Reset left state behind")
	}

	// Ending the context stops everything.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := get(t, c.URL(NameMonolith)+"/health")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("services still answer after the context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartAllFixedPorts(t *testing.T) {
	// Below Linux's ephemeral range, so the ports are free unless a fixed-port process holds them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for base := 20000; base < 30000; base += 997 {
		c, err := StartAll(ctx, "", base)
		if err != nil {
			continue // someone else's port; try another range
		}
		defer c.Close()
		for i, name := range Names {
			if want := "http://127.0.0.1:" + strconv.Itoa(base+i); c.URL(name) != want {
				t.Fatalf("%s at %s, want %s", name, c.URL(name), want)
			}
		}
		return
	}
	t.Skip("no five consecutive free ports found")
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, _, err := Start(ctx, "127.0.0.1:0", nil); err == nil {
		t.Error("nil service accepted")
	}
	if _, _, err := Start(ctx, "not an address", NewUsers()); err == nil {
		t.Error("bad address accepted")
	}
	if _, err := StartAll(ctx, "", -1); err == nil {
		t.Error("negative port accepted")
	}
	if _, err := StartAll(ctx, "", 65534); err == nil {
		t.Error("ports past 65535 accepted")
	}

	srv, url, err := Start(ctx, ":0", NewUsers())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("wildcard listener URL = %q, want loopback", url)
	}
}

func TestServiceCloseStopsItsServers(t *testing.T) {
	svc := NewPayments()
	_, url, err := Start(context.Background(), "127.0.0.1:0", svc)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, err := get(t, url+"/health"); err != nil || status != 200 {
		t.Fatalf("health %d %v", status, err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(t, url+"/health"); err == nil {
		t.Fatal("closed service still answers")
	}
}
