package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// windowScript checks every window and counts the request in all of them, or in none: a request
// the minute window rejects must not use up the second window. It reads each window's counter
// (and, for a sliding window, the previous window's), applies the same test as admits with the
// weights computed by the caller, and returns {allowed, cur1, prev1, cur2, prev2, …}.
//
// KEYS: per window, its current and previous counter. ARGV: the number of windows, then per
// window its limit, previous-window weight and TTL in ms.
var windowScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local c, p = {}, {}
local ok = 1
for i = 1, n do
  local cur = tonumber(redis.call('GET', KEYS[2*i-1]) or 0)
  local w = tonumber(ARGV[3*i])
  local prev = 0
  if w > 0 then prev = tonumber(redis.call('GET', KEYS[2*i]) or 0) end
  c[i], p[i] = cur, prev
  if prev * w + cur + 1 > tonumber(ARGV[3*i-1]) then ok = 0 end
end
if ok == 1 then
  for i = 1, n do
    c[i] = redis.call('INCR', KEYS[2*i-1])
    if c[i] == 1 then redis.call('PEXPIRE', KEYS[2*i-1], ARGV[3*i+1]) end
  end
end
local out = {ok}
for i = 1, n do out[2*i] = c[i]; out[2*i+1] = p[i] end
return out
`)

// bucketScript is GCRA: KEYS[1] holds the theoretical arrival time (µs). ARGV: now, interval,
// tolerance (µs). It returns {allowed, tat} with tat raised to now, before this request's
// interval was added. The TAT is written with %d because Lua's default number format would round
// it.
var bucketScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
if tat - now > tonumber(ARGV[3]) then return {0, tat} end
local nxt = tat + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)
return {1, tat}
`)

// keyGraceMS keeps counters a little past their window so that a gateway whose clock runs ahead
// of Redis's does not see them vanish early.
const keyGraceMS = 1000

// maxOrphans bounds Redis calls left running after store_timeout when the client ignores context
// deadlines; beyond it, checks fail at once instead of piling up goroutines.
const maxOrphans = 256

var (
	errStoreTimeout = errors.New("rate-limit store did not answer within store_timeout")
	errStoreBusy    = errors.New("too many rate-limit store calls outstanding")
)

// redisStore keeps counters in Redis, shared by every Portico instance using the same server.
// Keys are portico:rl:<policy>:<window>:{<identifier>}:<window number> (or
// portico:rl:<policy>:<strategy>:{<identifier>} for buckets); the braces make every key of one
// identifier a Redis Cluster hash tag, so a multi-window script never spans slots.
type redisStore struct {
	spec    *spec
	client  redis.UniversalClient
	timeout time.Duration
	// honoursDeadlines is whether the client applies context deadlines to its sockets
	// (ContextTimeoutEnabled); without it a check waits in a goroutine for at most timeout.
	honoursDeadlines bool
	orphans          chan struct{}
	prefixes         [maxWindows]string
	bucketPrefix     string
}

func newRedisStore(name string, s *spec, client redis.UniversalClient, timeout time.Duration) *redisStore {
	// Braces in the policy name would move the hash tag out of the identifier.
	safe := strings.NewReplacer("{", "(", "}", ")").Replace(name)
	st := &redisStore{spec: s, client: client, timeout: timeout, orphans: make(chan struct{}, maxOrphans)}
	for _, w := range s.windows {
		st.prefixes[w.kind] = "portico:rl:" + safe + ":" + windowNames[w.kind] + ":{"
	}
	st.bucketPrefix = "portico:rl:" + safe + ":" + s.strategy + ":{"
	switch c := client.(type) {
	case *redis.Client:
		st.honoursDeadlines = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		st.honoursDeadlines = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		st.honoursDeadlines = c.Options().ContextTimeoutEnabled
	}
	return st
}

func (st *redisStore) take(ctx context.Context, key []byte, now int64, pos *[maxWindows]windowPos, r *result) error {
	s := st.spec
	if s.gcra() {
		reply, err := st.run(ctx, bucketScript, []string{st.bucketPrefix + string(key) + "}"}, now, s.interval, s.tolerance)
		if err != nil {
			return err
		}
		if len(reply) != 2 {
			return fmt.Errorf("rate-limit script answered %d values, want 2", len(reply))
		}
		fillBucket(s, now, reply[1], reply[0] == 1, r)
		return nil
	}
	n := len(s.windows)
	keys := make([]string, 0, 2*n)
	args := make([]any, 0, 1+3*n)
	args = append(args, n)
	for i, w := range s.windows {
		p := &pos[i]
		pre := st.prefixes[w.kind] + string(key) + "}:"
		keys = append(keys, pre+strconv.FormatInt(p.idx, 10), pre+strconv.FormatInt(p.idx-1, 10))
		ttl := (s.keepUntil(w, p)-now)/1000 + keyGraceMS
		args = append(args, w.limit, p.weight, ttl)
	}
	reply, err := st.run(ctx, windowScript, keys, args...)
	if err != nil {
		return err
	}
	if len(reply) != 1+2*n {
		return fmt.Errorf("rate-limit script answered %d values, want %d", len(reply), 1+2*n)
	}
	var c [maxWindows]counts
	for i := range n {
		c[i] = counts{cur: reply[1+2*i], prev: reply[2+2*i]}
	}
	fillWindows(s, now, pos, &c, reply[0] == 1, r)
	return nil
}

type scriptReply struct {
	vals []int64
	err  error
}

// run executes a script in one round trip (EVALSHA, falling back to EVAL when Redis lost its
// script cache, as after a restart), bounded by the store timeout.
func (st *redisStore) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) ([]int64, error) {
	if st.honoursDeadlines {
		ctx, cancel := context.WithTimeout(ctx, st.timeout)
		defer cancel()
		return sc.Run(ctx, st.client, keys, args...).Int64Slice()
	}
	// The client would wait for its own ReadTimeout (seconds by default); answer the request
	// after store_timeout and let the call finish in the background.
	select {
	case st.orphans <- struct{}{}:
	default:
		return nil, errStoreBusy
	}
	ch := make(chan scriptReply, 1)
	go func() {
		defer func() { <-st.orphans }()
		v, err := sc.Run(context.WithoutCancel(ctx), st.client, keys, args...).Int64Slice()
		ch <- scriptReply{v, err}
	}()
	t := time.NewTimer(st.timeout)
	defer t.Stop()
	select {
	case rep := <-ch:
		return rep.vals, rep.err
	case <-t.C:
		return nil, errStoreTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (st *redisStore) close() error { return nil }
