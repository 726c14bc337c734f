package bff_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/bff"
	"github.com/redis/go-redis/v9"
)

func persisted(hash string) map[string]any {
	return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
}

// testAPQ runs the APQ protocol against the web profile: a hash alone misses, the hash with its
// query registers and runs, then the hash alone hits, by POST and by GET.
func testAPQ(t *testing.T, e *env) {
	t.Helper()
	q := fmt.Sprintf(`{ me { id } } # %d`, time.Now().UnixNano()) // unique, so a shared store starts empty
	h := sha(q)
	steps := []struct {
		name     string
		req      map[string]any
		get      bool
		accept   string
		status   int
		wantCode string
	}{
		{name: "miss", req: map[string]any{"extensions": persisted(h)}, status: 200, wantCode: "PERSISTED_QUERY_NOT_FOUND"},
		{name: "miss, graphql-response+json", req: map[string]any{"extensions": persisted(h)},
			accept: "application/graphql-response+json", status: 400, wantCode: "PERSISTED_QUERY_NOT_FOUND"},
		{name: "wrong hash", req: map[string]any{"query": q, "extensions": persisted(sha("other"))}, status: 400, wantCode: "BAD_REQUEST"},
		{name: "register", req: map[string]any{"query": q, "extensions": persisted(h)}, status: 200},
		{name: "hit", req: map[string]any{"extensions": persisted(h)}, status: 200},
		{name: "hit over GET", req: map[string]any{"extensions": persisted(h)}, get: true, status: 200},
		// Hex in upper case names the same hash (it failed as "does not match" with its query).
		{name: "hit in upper case", req: map[string]any{"extensions": persisted(strings.ToUpper(h))}, status: 200},
		{name: "register in upper case", req: map[string]any{"query": q, "extensions": persisted(strings.ToUpper(h))}, status: 200},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var a answer
			if st.get {
				a = e.do(t, http.MethodGet, "/web/graphql?extensions="+url.QueryEscape(`{"persistedQuery":{"version":1,"sha256Hash":"`+h+`"}}`), nil)
			} else {
				a = e.post(t, "web", st.req, "Accept", st.accept)
			}
			r := a.graphql(t)
			if a.status != st.status {
				t.Fatalf("status %d, want %d: %s", a.status, st.status, a.body)
			}
			if st.wantCode != "" {
				if len(r.Errors) != 1 || r.Errors[0].code() != st.wantCode {
					t.Fatalf("answer %s, want %s", a.body, st.wantCode)
				}
				return
			}
			if len(r.Errors) > 0 || !contains(string(r.Data), `"u1"`) {
				t.Fatalf("answer %s, want the query's data", a.body)
			}
		})
	}
}

func TestAutomaticPersistedQueriesInMemory(t *testing.T) {
	testAPQ(t, newEnv(t, envOptions{}))
}

func TestAutomaticPersistedQueriesInRedis(t *testing.T) {
	client := redisClient(t)
	prefix := fmt.Sprintf("portico-test:%d:apq:", time.Now().UnixNano())
	c, err := bff.NewRedisAPQCache(client, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithPrefix(prefix)
	t.Cleanup(func() {
		keys, _ := client.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(context.Background(), keys...)
		}
	})
	testAPQ(t, newEnv(t, envOptions{apq: c}))
	keys, err := client.Keys(context.Background(), prefix+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("redis holds %v (%v), want the one registered document under the prefix", keys, err)
	}
	if ttl := client.TTL(context.Background(), keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("ttl %v, want at most a minute", ttl)
	}
}

func TestAPQCacheTreatsAStoreFailureAsAMiss(t *testing.T) {
	// Nothing listens here: every Redis call fails. Port 1 (privileged), not a port freed by
	// closing a listener, which another test process running in parallel could bind meanwhile.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	defer client.Close()
	c, err := bff.NewRedisAPQCache(client, 0)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithLogger(quietLogger())
	c.Add(context.Background(), "h", "{ me { id } }")
	if q, ok := c.Get(context.Background(), "h"); ok || q != "" {
		t.Errorf("Get = %q, %v; want a miss", q, ok)
	}
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		t.Skipf("no Redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestTrustedDocumentsOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	home := operationText(t, "mobile", "MobileHome.graphql")
	tests := []struct {
		name   string
		req    map[string]any
		status int
		code   string
	}{
		{"ad-hoc query is refused", map[string]any{"query": `{ me { id email } }`}, 403, "PERSISTED_QUERY_REQUIRED"},
		{"ad-hoc query with a hash is refused", map[string]any{"query": `{ me { id } }`, "extensions": persisted(sha(`{ me { id } }`))},
			403, "PERSISTED_QUERY_REQUIRED"},
		{"stored text with a changed byte is refused", map[string]any{"query": home + " "}, 403, "PERSISTED_QUERY_REQUIRED"},
		{"unknown hash", map[string]any{"extensions": persisted(sha("nope"))}, 400, "PERSISTED_QUERY_NOT_FOUND"},
		{"unknown name", map[string]any{"operationName": "Nope"}, 400, "PERSISTED_QUERY_NOT_FOUND"},
		{"unknown documentId", map[string]any{"documentId": "sha256:" + sha("nope")}, 400, "PERSISTED_QUERY_NOT_FOUND"},
		{"by operation name", map[string]any{"operationName": "MobileHome"}, 200, ""},
		{"by persisted query hash", map[string]any{"extensions": persisted(sha(home))}, 200, ""},
		{"by documentId", map[string]any{"documentId": "sha256:" + sha(home)}, 200, ""},
		{"by documentId in upper-case hex", map[string]any{"documentId": "sha256:" + strings.ToUpper(sha(home))}, 200, ""},
		{"by exact text", map[string]any{"query": home}, 200, ""},
		{"by name with variables", map[string]any{"operationName": "MobileOrder", "variables": map[string]any{"id": "o1"}}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.resetCounts()
			a := e.post(t, "mobile", tt.req, "Accept", "application/graphql-response+json")
			r := a.graphql(t)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code != "" {
				if len(r.Errors) != 1 || r.Errors[0].code() != tt.code {
					t.Fatalf("answer %s, want %s", a.body, tt.code)
				}
				if n := e.svc["users"].TotalRequests(); n != 0 {
					t.Errorf("a refused operation reached the users service %d times", n)
				}
				return
			}
			if len(r.Errors) > 0 || len(r.Data) < 10 {
				t.Fatalf("answer %s, want data", a.body)
			}
		})
	}
}

func TestStoredOperationsRunByNameOnOpenProfilesToo(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.post(t, "web", map[string]any{"operationName": "OrderDetail", "variables": map[string]any{"id": "o2"}})
	if r := a.graphql(t); a.status != 200 || len(r.Errors) > 0 || !contains(string(r.Data), `"o2"`) {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
}

// The APQ cache is shared by every BFF; a document registered on one with a larger
// max_document_bytes must not run by hash on one with a smaller limit. There it is not found, and
// the text, sent next, gets the 413 it gets anyway.
func TestAPQDocumentRespectsEachBFFsSizeLimit(t *testing.T) {
	apq, err := bff.NewAPQCache(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apq.Close)
	web := webConfig()
	web.GraphQL.MaxDocumentBytes = 64 << 10
	small := bff.Config{Path: "/mobile", GraphQL: bff.GraphQLConfig{MaxDocumentBytes: 512, PersistedQueries: bff.PersistedQueriesAPQ}}
	e := newEnv(t, envOptions{web: &web, mobile: &small, apq: apq})

	q := "{ me { id } }" + strings.Repeat(" ", 2000)
	if a := e.post(t, "mobile", map[string]any{"query": q}); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("small BFF, full text: status %d, want 413: %s", a.status, a.body)
	}
	if a := e.post(t, "web", map[string]any{"query": q, "extensions": persisted(sha(q))}); a.status != http.StatusOK {
		t.Fatalf("web registration: status %d: %s", a.status, a.body)
	}
	if a := e.post(t, "web", map[string]any{"extensions": persisted(sha(q))}); a.status != http.StatusOK {
		t.Fatalf("web, by hash: status %d: %s", a.status, a.body)
	}
	a := e.post(t, "mobile", map[string]any{"extensions": persisted(sha(q))})
	if !strings.Contains(string(a.body), "PERSISTED_QUERY_NOT_FOUND") || strings.Contains(string(a.body), `"data"`) {
		t.Fatalf("small BFF ran a %d-byte document registered on web by hash: status %d, body %s (want PERSISTED_QUERY_NOT_FOUND)", len(q), a.status, a.body)
	}
}

// TestAPQNotFoundOverGETIsNotCached: Apollo's APQ over GET answers a hash it does not know with
// PERSISTED_QUERY_NOT_FOUND (200 application/json); a cache in front that stored it would answer
// every later hash-only GET with it for its TTL, although the client has registered the query.
func TestAPQNotFoundOverGETIsNotCached(t *testing.T) {
	e := cachedProfiles(t)
	q := "{ dashboard { unreadNotifications } }"
	hashOnly := "/web/graphql?extensions=" + url.QueryEscape(`{"persistedQuery":{"version":1,"sha256Hash":"`+sha(q)+`"}}`)
	a := e.do(t, http.MethodGet, hashOnly, nil)
	if r := a.graphql(t); len(r.Errors) == 0 || r.Errors[0].code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("precondition: first hash-only GET %d %s, want PERSISTED_QUERY_NOT_FOUND", a.status, a.body)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("PERSISTED_QUERY_NOT_FOUND answered %d with Cache-Control %q, want no-store", a.status, cc)
	}
	reg := e.do(t, http.MethodGet, hashOnly+"&query="+url.QueryEscape(q), nil)
	if r := reg.graphql(t); reg.status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("precondition: registering GET %d %s", reg.status, reg.body)
	}
	again := e.do(t, http.MethodGet, hashOnly, nil)
	if r := again.graphql(t); len(r.Errors) > 0 {
		t.Errorf("hash-only GET after registration still answers %s", again.body)
	}
}

// TestAPQRegistersOnlyDocumentsThatRun: a hash sent with its text is registered only once the
// document has parsed, validated and passed every limit. Otherwise any client could fill the
// shared cache (Redis, across replicas) with text that never runs anywhere.
func TestAPQRegistersOnlyDocumentsThatRun(t *testing.T) {
	apq, err := bff.NewAPQCache(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apq.Close)
	web := webConfig()
	web.GraphQL.Introspection = nil
	e := newEnv(t, envOptions{web: &web, apq: apq})
	for name, text := range map[string]string{
		"not GraphQL":          strings.Repeat("x", 4000),
		"fails validation":     `{ nope }`,
		"over the depth limit": `{ me { orders { edges { node { user { orders { edges { node { id } } } } } } } } }`,
		"introspection is off": `{ __schema { types { name } } }`,
	} {
		t.Run(name, func(t *testing.T) {
			a := e.post(t, "web", map[string]any{"query": text, "extensions": persisted(sha(text))})
			if a.status == http.StatusOK && !strings.Contains(string(a.body), `"errors"`) {
				t.Fatalf("the document ran: %s", a.body)
			}
			if doc, ok := apq.Get(context.Background(), sha(text)); ok {
				t.Errorf("a refused request (%d %.120s) stored its %d-byte text in the shared APQ cache", a.status, a.body, len(doc))
			}
		})
	}
}
