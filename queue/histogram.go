package queue

import (
	"sync/atomic"
	"time"
)

// Histogram is a snapshot of a distribution the spool observes on its
// commit path: how many observations fell at or below each bound (not
// cumulative: Counts[i] is those above Bounds[i-1]), how many were above
// the last bound, and their sum. It is shaped for a Prometheus histogram
// without this package knowing of Prometheus.
type Histogram struct {
	Bounds []float64 // upper bounds, increasing
	Counts []uint64  // len(Bounds)+1: the last is above every bound
	Count  uint64
	Sum    float64
}

// BatchBounds are the bucket bounds of Stats.BatchRecords: records per
// group commit, by powers of two up to the batch limit.
var BatchBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// SyncBounds are the bucket bounds of Stats.SyncSeconds: from a fast
// SSD's fdatasync (0.1 ms) to a disk in trouble (2.5 s).
var SyncBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// hist counts observations with atomic adds only: the writer goroutine
// observes once a batch, with no lock and no allocation, while Stats reads.
// The sum is kept as an integer (records, or nanoseconds) so that it too
// is one atomic add.
type hist struct {
	bounds []float64
	counts []atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	unit   float64 // the sum's unit in the reported unit (1e-9 for nanoseconds)
}

func newHist(bounds []float64, unit float64) *hist {
	return &hist{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1), unit: unit}
}

// observe counts v, whose integer form (in the sum's unit) is raw.
func (h *hist) observe(v float64, raw uint64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(raw)
	h.n.Add(1)
}

func (h *hist) observeDuration(d time.Duration) { h.observe(d.Seconds(), uint64(max(d, 0))) }

func (h *hist) snapshot() Histogram {
	s := Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = float64(h.sum.Load()) * h.unit
	return s
}
