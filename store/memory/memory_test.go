package memory

import (
	"testing"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return New() })
}
