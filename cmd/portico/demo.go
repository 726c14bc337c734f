package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/testing/demo"
)

//go:embed demo.yaml
var demoConfig []byte

// cmdDemo starts the demo backends in-process and the gateway in front of them with the
// embedded config, so `make run` needs nothing but Go.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":8080", "proxy listen address")
	admin := fs.String("admin", "127.0.0.1:9901", "admin listen address")
	basePort := fs.Int("backends-port", 9101, "first port of the five demo backends (0 = any free ports)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := demo.StartAll(ctx, "127.0.0.1", *basePort)
	if err != nil {
		fmt.Fprintf(stderr, "starting demo backends: %v (is another demo running? try -backends-port 0)\n", err)
		return 1
	}
	defer cluster.Close()
	env := map[string]string{"PORTICO_DEMO_LISTEN": *listen, "PORTICO_DEMO_ADMIN": *admin}
	for name, url := range cluster.URLs() {
		env["DEMO_"+strings.ToUpper(name)+"_URL"] = url
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	f, err := config.Parse(demoConfig, "demo.yaml")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return serve(f, "", logger, stdout, func(name, addr string) {
		logger.Info("listening", "listener", name, "addr", addr)
		if name == "admin" {
			fmt.Fprintf(stderr, "\nPortico demo: admin on http://%s\n  curl -s http://%s/upstreams\n  curl -s http://%s/metrics | grep portico_\n", addr, addr, addr)
			return
		}
		base := "http://" + strings.Replace(addr, "[::]", "localhost", 1)
		fmt.Fprintf(stderr, "\nPortico demo: gateway on %s (backends: %s)\n", base, strings.Join(sortedURLs(cluster.URLs()), ", "))
		for _, p := range []string{
			"/web/dashboard                  (REST facade: three services, concurrently; rate limited per IP)",
			"/mobile/home                    (the mobile BFF's trimmed shape)",
			"/web/openapi.json               (OpenAPI 3.1 of the web REST facade)",
			"/api/v1/users/u7                (monolith answers; the users service is shadowed and compared)",
			"/api/v1/orders/o12              (90% monolith, 10% orders service, sticky by X-User-ID)",
			"/svc/users?ids=u1,u2            (the users service directly, cached 10s: see X-Cache-Status)",
			"/svc/payments/p1                (401 without a key; add -H 'apikey: demo-key')",
			"/anything/else                  (the monolith's catch-all)",
		} {
			fmt.Fprintf(stderr, "  curl -i %s%s\n", base, p)
		}
		fmt.Fprintf(stderr, "  curl -s %s/web/graphql -H 'content-type: application/json' -d '{\"query\":\"{ dashboard { me { name } unreadNotifications } }\"}'\n", base)
		fmt.Fprintf(stderr, "  open %s/web/playground        (GraphiQL)\n", base)
	})
}

func sortedURLs(m map[string]string) []string {
	var out []string
	for _, name := range demo.Names {
		out = append(out, name+"="+m[name])
	}
	return out
}
