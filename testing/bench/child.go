package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// child is a helper process: this same binary started with a flag (-serve-backends,
// -serve-yardsticks), spoken to over its stdin and stdout, one line at a time. It exits when its
// stdin closes.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startChild runs this binary with args, writes hello (when not nil) as its first line of input
// and decodes the first line it prints into urls. what names the child in errors.
func startChild(what string, args []string, hello any, urls any) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the bench binary to run the %s: %w", what, err)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s process: %w", what, err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if hello != nil {
		line, err := json.Marshal(hello)
		if err == nil {
			_, err = fmt.Fprintf(stdin, "%s\n", line)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("the %s process: %w", what, err)
		}
	}
	if !c.out.Scan() {
		c.Close()
		return nil, fmt.Errorf("the %s process printed no URLs: %v", what, c.out.Err())
	}
	if err := json.Unmarshal(c.out.Bytes(), urls); err != nil {
		c.Close()
		return nil, fmt.Errorf("the %s process's URLs: %w", what, err)
	}
	return c, nil
}

// Pid is the child's process ID, for CPU accounting.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// Close ends the child: closing stdin makes it return; a child that does not is killed.
func (c *child) Close() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}
