// Package redistest runs redis-server processes of a test's own, for tests that stop, kill or
// restart the Redis they use. Tests that only need a Redis use the shared one on 127.0.0.1:6379
// that .ci/run provides; these servers are for faults, which must not touch that one.
package redistest

import (
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server on a loopback port of its own. Everything it does to the process goes
// through the PID it started, and the test's cleanup kills it.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:port, the same across Restart
	cmd  *exec.Cmd
}

// Start starts a server on a free port and waits until it answers; it skips the test when
// redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s := &Server{t: t, Addr: addr}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Restart starts the server again on the same port, empty, after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Skip("redis-server is not installed")
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not start on " + s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop freezes the server (SIGSTOP): connections stay open and nothing answers, as with a
// Redis stalled by a long command or a full swap.
func (s *Server) Stop() { s.signal(syscall.SIGSTOP) }

// Continue resumes a stopped server.
func (s *Server) Continue() { s.signal(syscall.SIGCONT) }

// Kill ends the server; calling it again does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process would not exit until resumed
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(sig); err != nil {
			s.t.Fatal(err)
		}
	}
}
