# Portico. `make run` and `make test` work on a fresh machine with only Go installed.
GO       ?= go
PKGS     ?= ./...
BENCHTIME ?= 1s

.PHONY: run build test vet lint test-race bench-smoke generate check-generated bench bench-go bench-load clean

## run: the gateway on its embedded demo (demo backends, in-memory stores); prints URLs to try
run:
	$(GO) run ./cmd/portico demo

## build: bin/portico
build:
	$(GO) build -trimpath -o bin/portico ./cmd/portico

## test: everything CI runs: generated code up to date, vet, staticcheck, the race-enabled suite
test: check-generated vet lint test-race bench-smoke

# bench-smoke runs every benchmark once, so one broken by a change fails the suite instead of
# `make bench` much later.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x $(PKGS)

vet:
	$(GO) vet $(PKGS)

## lint: gofmt (every file formatted) and staticcheck, pinned in go.mod as a tool
lint:
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l . 2>&1) || { echo "$$out"; exit 1; }; \
	if [ -n "$$out" ]; then echo "not gofmt-formatted (run gofmt -w):"; echo "$$out"; exit 1; fi
	$(GO) tool staticcheck $(PKGS)

test-race:
	$(GO) test -race -count=1 -timeout 8m $(PKGS)

## generate: regenerate gqlgen code from schema/*.graphql
generate:
	$(GO) tool gqlgen generate

## check-generated: fails when schema/ or gqlgen.yml changed without `make generate`
check-generated:
	@sum() { find resolvers schema gqlgen.yml -type f 2>/dev/null | sort | xargs sha256sum | sha256sum; }; \
	before=$$(sum); $(GO) tool gqlgen generate || exit 1; after=$$(sum); \
	if [ "$$before" != "$$after" ]; then \
		echo "generated GraphQL code was stale: 'make generate' has now updated it; review and commit"; exit 1; \
	fi; echo "generated code is up to date"

## bench: go test benchmarks for the hot paths, then the load scenario (direct vs through Portico)
bench: bench-go bench-load

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./upstreams/ ./routes/ ./internal/gateway/ ./internal/h1serve/

bench-load:
	$(GO) run ./testing/bench

clean:
	rm -rf bin
