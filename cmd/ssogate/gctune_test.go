package main

import "testing"

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, gcMaxPercent},
		{4 << 20, gcMaxPercent}, // 128 MiB would be 3200%
		{8 << 20, 1600},         // 128 MiB headroom
		{32 << 20, 400},
		{64 << 20, 200},  // 128 MiB headroom
		{96 << 20, 133},  // 128 MiB headroom
		{128 << 20, 100}, // 128 MiB headroom, heap goal 256 MiB
		{160 << 20, 60},  // heap goal 256 MiB: 96 MiB headroom
		{192 << 20, 50},  // 64 MiB headroom, half the live heap
		{200 << 20, 50},  // half the live heap from here on
		{600 << 20, gcMinPercent},
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}
