package config

import (
	"strings"
	"testing"
)

// Two listeners, or a listener and the admin API, on one port collide at start ("address already
// in use") whenever one host covers the other, not only when the strings are equal: validate
// must refuse what run would fail on.
func TestListenAddressesThatCollide(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // "" for accepted
	}{
		{"same string", "listeners: [{address: \":18006\"}, {address: \":18006\"}]\nadmin: \"off\"", `already used by listeners[0]`},
		{"wildcard and IPv4 wildcard", "listen: \":18006\"\nadmin: \"0.0.0.0:18006\"", `overlaps ":18006" of listen`},
		{"wildcard and loopback", "listeners: [{address: \"127.0.0.1:18006\"}, {address: \":18006\"}]\nadmin: \"off\"", `overlaps "127.0.0.1:18006"`},
		{"localhost is 127.0.0.1", "listen: \"localhost:18006\"\nadmin: \"127.0.0.1:18006\"", `overlaps "localhost:18006"`},
		{"IPv6 wildcard covers IPv4", "listen: \"[::]:18006\"\nadmin: \"127.0.0.1:18006\"", `overlaps`},
		{"the default admin address", "listen: \":9901\"", `the default admin address`},
		{"the default listen", "admin: \"0.0.0.0:8080\"", `the default listen`},
		// Go listens on 0.0.0.0 dual-stack: [::1] on the same port fails to bind.
		{"IPv4 wildcard and IPv6 loopback", "listen: \"0.0.0.0:18006\"\nadmin: \"[::1]:18006\"", `overlaps`},
		{"ports compared as numbers", "listen: \":08080\"\nadmin: \"127.0.0.1:8080\"", `overlaps`},
		{"port 0 spelled 00", "listeners: [{address: \":00\"}, {address: \":00\"}]\nadmin: \"off\"", ""},
		{"IPv6 loopback spelled two ways", "listen: \"[::1]:18006\"\nadmin: \"[0:0:0:0:0:0:0:1]:18006\"", `overlaps`},
		{"two loopback addresses", "listen: \"127.0.0.1:18006\"\nadmin: \"127.0.0.2:18006\"", ""},
		{"port 0 twice", "listeners: [{address: \":0\"}, {address: \"127.0.0.1:0\"}]\nadmin: \"127.0.0.1:0\"", ""},
		{"other ports", "listen: \":18006\"\nadmin: \"127.0.0.1:18007\"", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml+"\n"), "t.yaml")
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want a problem with %q", err, tc.want)
			}
		})
	}
}
