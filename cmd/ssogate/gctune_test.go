package main

import "testing"

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, gcMaxPercent},
		{8 << 20, gcMaxPercent},
		{32 << 20, 200},
		{64 << 20, 100},
		{96 << 20, 66},  // 64 MiB headroom
		{128 << 20, 50}, // half the live heap from here on
		{600 << 20, gcMinPercent},
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}
