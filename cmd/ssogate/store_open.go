package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
	"github.com/ssogate/ssogate/store/cache"
	"github.com/ssogate/ssogate/store/memory"
	redisstore "github.com/ssogate/ssogate/store/redis"
)

// openStore opens the configured store backend (spec section 2, "store";
// docs/storage.md): memory, bolt (one file) or redis (shared by replicas).
// Bolt and redis sit behind the read cache of package store/cache unless
// cache_ttl is 0; with redis the cache is invalidated across replicas over
// pub/sub. An unreachable Redis is not an error: it is logged, decisions
// for SSO orgs answer 503 until it is back, and the client reconnects.
func openStore(c config.Store, logger *slog.Logger) (store.Store, error) {
	switch c.Backend {
	case "", config.BackendMemory:
		return memory.New(), nil
	case config.BackendBolt:
		b, err := bolt.Open(c.Path, bolt.Options{Logger: logger})
		if err != nil {
			return nil, err
		}
		logger.Info("store: bolt", "path", c.Path, "cache_ttl", c.CacheTTL)
		return withCache(b, c, nil, logger), nil
	case config.BackendRedis:
		addrs := c.Addrs
		if c.Addr != "" {
			addrs = []string{c.Addr}
		}
		if c.PasswordEnv != "" && c.Password() == "" {
			logger.Warn("store: the redis password variable is empty or not set", "password_env", c.PasswordEnv)
		}
		redisstore.SetLogger(logger)
		r, err := redisstore.New(redisstore.Options{Addrs: addrs, MasterName: c.MasterName,
			Username: c.Username, Password: c.Password(), DB: c.DB, Logger: logger})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := r.Ping(ctx); err != nil {
			logger.Warn("store: redis is not reachable yet; every use retries it, and decisions for SSO orgs answer 503 until it answers",
				"addrs", addrs, "error", err)
		} else {
			logger.Info("store: redis", "addrs", addrs, "master_name", c.MasterName, "db", c.DB, "cache_ttl", c.CacheTTL)
		}
		return withCache(r, c, r.Bus(), logger), nil
	}
	return nil, fmt.Errorf("store backend %q is not available in this build", c.Backend)
}

// withCache puts the read cache in front of st unless c.CacheTTL is 0.
func withCache(st store.Store, c config.Store, bus cache.Bus, logger *slog.Logger) store.Store {
	if c.CacheTTL <= 0 {
		return st
	}
	return cache.New(st, cache.Options{TTL: c.CacheTTL, Bus: bus, Logger: logger})
}
