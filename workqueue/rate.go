package workqueue

import (
	"sync"
	"time"
)

// rateRing counts messages in and out per second over the last minute.
type rateRing struct {
	mu      sync.Mutex
	sec     [60]int64 // the second each slot counts
	in, out [60]uint64
}

func (r *rateRing) add(now time.Time, in, out uint64) {
	s := now.Unix()
	i := s % 60
	r.mu.Lock()
	if r.sec[i] != s {
		r.sec[i], r.in[i], r.out[i] = s, 0, 0
	}
	r.in[i] += in
	r.out[i] += out
	r.mu.Unlock()
}

func (r *rateRing) rate(now time.Time) Rate {
	s := now.Unix()
	var in, out uint64
	r.mu.Lock()
	for i := range r.sec {
		if s-r.sec[i] < 60 {
			in += r.in[i]
			out += r.out[i]
		}
	}
	r.mu.Unlock()
	return Rate{Window: time.Minute, In: float64(in) / 60, Out: float64(out) / 60}
}
