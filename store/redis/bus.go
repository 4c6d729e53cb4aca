package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Bus carries cache invalidations between replicas over Redis pub/sub, on
// the channel "<prefix>invalidate". Messages are cache keys; package cache
// defines what they mean. Pub/sub delivers a message to the subscribers
// connected when it is published, so Listen reports every loss of the
// subscription (onLive(false)) for the cache to stop trusting what it holds.
type Bus struct {
	c       goredis.UniversalClient
	channel string
	logger  *slog.Logger
	// pingEvery is how long a quiet subscription waits before it checks
	// the connection with PING; a PING unanswered for as long again counts
	// as a lost subscription.
	pingEvery time.Duration
}

// Bus returns the invalidation bus on s's server and key prefix.
func (s *Store) Bus() *Bus {
	return &Bus{c: s.c, channel: s.prefix + "invalidate", logger: s.logger, pingEvery: time.Second}
}

// Publish sends key to every listening replica.
func (b *Bus) Publish(ctx context.Context, key string) error {
	if err := b.c.Publish(ctx, b.channel, key).Err(); err != nil {
		return fmt.Errorf("redis: publishing invalidation: %w", err)
	}
	return nil
}

// Listen subscribes to the channel and calls onKey with every message
// until ctx is done, resubscribing after failures (with a backoff of up to
// one second). It calls onLive(true) each time the subscription is
// confirmed and onLive(false) each time it is lost, and once more when it
// returns; messages published while not live are lost. Calls are made
// from one goroutine, in order.
func (b *Bus) Listen(ctx context.Context, onKey func(key string), onLive func(live bool)) {
	const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		ps := b.c.Subscribe(ctx, b.channel)
		var closeOnce sync.Once
		closePS := func() { closeOnce.Do(func() { ps.Close() }) }
		stop := context.AfterFunc(ctx, closePS) // unblocks a pending receive
		wasLive, err := b.receive(ctx, ps, onKey, onLive)
		stop()
		closePS()
		onLive(false)
		if ctx.Err() != nil {
			return
		}
		if wasLive {
			b.logger.Warn("cache invalidation subscription lost; the cache is bypassed until it is back", "error", err)
			backoff = minBackoff
		} else {
			b.logger.Debug("cache invalidation subscription failed", "error", err)
			backoff = min(2*backoff, maxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// receive reads from one subscription until it fails. It reports whether
// the subscription was confirmed, and the error that ended it.
func (b *Bus) receive(ctx context.Context, ps *goredis.PubSub, onKey func(string), onLive func(bool)) (wasLive bool, err error) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.pingEvery)
		if err != nil {
			if !isTimeout(err) || pinged || ctx.Err() != nil {
				if pinged && isTimeout(err) {
					err = errors.New("PING unanswered")
				}
				return wasLive, err
			}
			if err := ps.Ping(ctx); err != nil {
				return wasLive, err
			}
			pinged = true
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" && m.Channel == b.channel {
				if wasLive {
					// A resubscription by go-redis itself: messages may
					// have been missed in between.
					onLive(false)
				}
				wasLive = true
				onLive(true)
			}
		case *goredis.Message:
			onKey(m.Payload)
		case *goredis.Pong:
			pinged = false
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
