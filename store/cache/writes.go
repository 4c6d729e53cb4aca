package cache

import (
	"context"
	"time"

	"github.com/ssogate/ssogate/store"
)

// PutMembership implements store.Memberships and invalidates the entry.
func (c *Store) PutMembership(ctx context.Context, m store.Membership) error {
	err := c.inner.PutMembership(ctx, m)
	c.changed(ctx, memberKey(m.Org, m.User), err)
	return err
}

// DeleteMembership implements store.Memberships and invalidates the entry.
func (c *Store) DeleteMembership(ctx context.Context, org, user string) error {
	err := c.inner.DeleteMembership(ctx, org, user)
	c.changed(ctx, memberKey(org, user), err)
	return err
}

// PutSession implements store.Sessions and invalidates the entry.
func (c *Store) PutSession(ctx context.Context, s store.Session) error {
	err := c.inner.PutSession(ctx, s)
	c.changed(ctx, sessionKey(s.Org, s.User), err)
	return err
}

// DeleteSession implements store.Sessions and invalidates the entry.
func (c *Store) DeleteSession(ctx context.Context, org, user string) error {
	err := c.inner.DeleteSession(ctx, org, user)
	c.changed(ctx, sessionKey(org, user), err)
	return err
}

// ListSessions implements store.Sessions; it is not cached.
func (c *Store) ListSessions(ctx context.Context, org string) ([]store.Session, error) {
	return c.inner.ListSessions(ctx, org)
}

// PutResource implements store.Catalog and invalidates the entry.
func (c *Store) PutResource(ctx context.Context, r store.Resource) error {
	err := c.inner.PutResource(ctx, r)
	c.changed(ctx, resourceKey(r.Type, r.ID), err)
	return err
}

// DeleteResource implements store.Catalog and invalidates the entry.
func (c *Store) DeleteResource(ctx context.Context, typ, id string) error {
	err := c.inner.DeleteResource(ctx, typ, id)
	c.changed(ctx, resourceKey(typ, id), err)
	return err
}

// PutPendingLogin implements store.PendingLogins; it is not cached.
func (c *Store) PutPendingLogin(ctx context.Context, p store.PendingLogin) error {
	return c.inner.PutPendingLogin(ctx, p)
}

// TakePendingLogin implements store.PendingLogins; it is not cached.
func (c *Store) TakePendingLogin(ctx context.Context, id string) (*store.PendingLogin, error) {
	return c.inner.TakePendingLogin(ctx, id)
}

// Remember implements store.Replays; it is not cached.
func (c *Store) Remember(ctx context.Context, id string, expiresAt time.Time) (bool, error) {
	return c.inner.Remember(ctx, id, expiresAt)
}
