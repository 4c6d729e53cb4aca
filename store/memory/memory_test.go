package memory

import (
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Backend{New: func(_ *testing.T, now func() time.Time) store.Store {
		return New().WithClock(now)
	}})
}
