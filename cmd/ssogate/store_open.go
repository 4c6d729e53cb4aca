package main

import (
	"fmt"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
)

// openStore opens the configured store backend (spec section 2, "store").
func openStore(c config.Store) (store.Store, error) {
	switch c.Backend {
	case "", config.BackendMemory:
		return memory.New(), nil
	}
	return nil, fmt.Errorf("store backend %q is not available in this build", c.Backend)
}
