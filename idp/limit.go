package idp

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Login starts per platform user and org: a burst of startBurst (unless
// Options.StartBurst says otherwise), then one every startEvery. Every start stores a pending login for 10 minutes, so
// without a bound one hub account could fill the store.
const (
	startBurst   = 10
	startEvery   = 6 * time.Second
	limiterUsers = 10000 // users tracked at once (LRU); an evicted user starts afresh
)

// startLimiter bounds login starts per (org, user) in this process. It is
// per replica: with n replicas a user gets at most n times the budget.
type startLimiter struct {
	mu    sync.Mutex
	users *lru.Cache[string, *rate.Limiter]
	now   func() time.Time
	burst int
}

func newStartLimiter(now func() time.Time, burst int) *startLimiter {
	if burst <= 0 {
		burst = startBurst
	}
	c, err := lru.New[string, *rate.Limiter](limiterUsers)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &startLimiter{users: c, now: now, burst: burst}
}

// allow reports whether user may start one more login at org now.
func (l *startLimiter) allow(org, user string) bool {
	k := org + "\x00" + user
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.users.Get(k)
	if !ok {
		lim = rate.NewLimiter(rate.Every(startEvery), l.burst)
		l.users.Add(k, lim)
	}
	return lim.AllowN(l.now(), 1)
}
