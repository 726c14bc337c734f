package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/portico-gw/portico/resolvers"
)

// Yardsticks are the least a Go process can do in each scenario, run in the same rounds as
// Portico. A figure from a quieter hour says little on a shared machine whose speed changes
// during the day; the same run's yardstick says how far Portico is from what the machine allows
// right now, and whether a target is reachable at all:
//   - reverseproxy: a bare httputil.ReverseProxy with a stock Transport in front of the bench
//     backend, the usual Go pass-through.
//   - floor: pass-through with no net/http and no gateway at all (floor.go), what any Go
//     process can forward on the machine right now.
//   - fanout: the dashboard's three backend calls made concurrently over net/http, the bodies
//     joined as they are: no GraphQL, no JSON decoding, no policies. Its latency is the floor
//     for any net/http aggregator in front of these backends under this load.
//
// They run in a child process (this binary with -serve-yardsticks), like the backends, so that
// their CPU is measured on its own. The parent writes one JSON line (yardstickTargets) on the
// child's stdin; the child answers with one JSON line (yardstickURLs) and serves until stdin
// closes.

// yardstickTargets are the backends the yardsticks call.
type yardstickTargets struct {
	// Bench is the pass-through benchmark backend.
	Bench string `json:"bench"`
	// Users, Orders and Notifications are the demo services behind the dashboard.
	Users         string `json:"users"`
	Orders        string `json:"orders"`
	Notifications string `json:"notifications"`
}

// yardstickURLs is the child's answer.
type yardstickURLs struct {
	ReverseProxy string `json:"reverseproxy"`
	Fanout       string `json:"fanout"`
	Floor        string `json:"floor"`
}

// serveYardsticks is the child's main: it reads the targets, starts both servers on loopback,
// prints their URLs and serves until in reaches EOF.
func serveYardsticks(ctx context.Context, in io.Reader, out io.Writer) error {
	lines := bufio.NewScanner(in)
	if !lines.Scan() {
		return fmt.Errorf("no targets line on stdin: %v", lines.Err())
	}
	var tg yardstickTargets
	if err := json.Unmarshal(lines.Bytes(), &tg); err != nil {
		return fmt.Errorf("targets line: %w", err)
	}
	proxy, err := newReverseProxy(tg.Bench)
	if err != nil {
		return err
	}
	fan, err := newFanout(tg)
	if err != nil {
		return err
	}
	bench, _ := url.Parse(tg.Bench) // newReverseProxy has checked it
	fl, err := newFloor(bench.Host)
	if err != nil {
		return err
	}
	defer fl.Close()
	urls := yardstickURLs{Floor: fl.URL()}
	var servers []*http.Server
	for _, s := range []struct {
		h   http.Handler
		url *string
	}{{proxy, &urls.ReverseProxy}, {fan, &urls.Fanout}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		servers = append(servers, srv)
		*s.url = "http://" + ln.Addr().String()
	}
	defer func() {
		for _, srv := range servers {
			_ = srv.Close()
		}
	}()
	line, err := json.Marshal(urls)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return err
	}
	for lines.Scan() { // nothing to say after the URLs: wait for EOF
	}
	return lines.Err()
}

// tunedTransport is what a careful Go proxy uses: enough idle connections per host for the
// bench's 64 connections, so that no request waits for a dial.
func tunedTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	return tr
}

func newReverseProxy(target string) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("reverse proxy target %q: want an http URL", target)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = tunedTransport()
	// wrk closes its connections mid-request when a round ends; each would log a line.
	p.ErrorLog = log.New(io.Discard, "", 0)
	return p, nil
}

// fanout answers any request with the dashboard's three calls, made concurrently with the
// paths Portico's resolvers use for the demo viewer.
type fanout struct {
	client *http.Client
	urls   [3]string
}

func newFanout(tg yardstickTargets) (*fanout, error) {
	viewer := url.QueryEscape(resolvers.DemoViewer)
	f := &fanout{
		client: &http.Client{Transport: tunedTransport(), Timeout: 5 * time.Second},
		urls: [3]string{
			tg.Users + "/users/current",
			tg.Orders + "/orders/recent?limit=5&user_id=" + viewer,
			tg.Notifications + "/notifications/count?user_id=" + viewer,
		},
	}
	for _, raw := range f.urls {
		if u, err := url.Parse(raw); err != nil || u.Host == "" {
			return nil, fmt.Errorf("fan-out target %q: want an http URL", raw)
		}
	}
	return f, nil
}

func (f *fanout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	var bodies [3][]byte
	var errs [3]error
	var wg sync.WaitGroup
	for i, u := range f.urls {
		wg.Go(func() { bodies[i], errs[i] = f.get(r.Context(), u) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"me":%s,"recentOrders":%s,"unread":%s}`, bodies[0], bodies[1], bodies[2])
}

func (f *fanout) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, err
}

// yardstickProcess is the parent's handle on the child.
type yardstickProcess struct {
	yardstickURLs
	*child
}

func startYardsticks(tg yardstickTargets) (*yardstickProcess, error) {
	y := &yardstickProcess{}
	c, err := startChild("yardsticks", []string{"-serve-yardsticks"}, tg, &y.yardstickURLs)
	if err != nil {
		return nil, err
	}
	y.child = c
	return y, nil
}
