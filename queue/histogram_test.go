package queue

import (
	"context"
	"sync"
	"testing"
)

// The group commit's histograms count what the writer did: every record
// in some batch, one sync per batch, the sums the totals.
func TestCommitHistograms(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	defer closeSpool(t, s)
	const workers, each = 20, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				mid := uint64(w*each + i + 1)
				if err := s.Commit(context.Background(), testEnvelope(mid, 1), testBody(mid, 512)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	b, y := st.BatchRecords, st.SyncSeconds
	if b.Count != st.Batches || uint64(b.Sum) != st.Records || st.Records != workers*each {
		t.Errorf("batch histogram: %d batches summing %v records; Stats: %d batches, %d records", b.Count, b.Sum, st.Batches, st.Records)
	}
	if y.Count != st.Syncs || y.Count == 0 || y.Sum <= 0 {
		t.Errorf("sync histogram: %d syncs taking %vs; Stats: %d syncs", y.Count, y.Sum, st.Syncs)
	}
	if len(b.Counts) != len(BatchBounds)+1 || len(y.Counts) != len(SyncBounds)+1 {
		t.Fatalf("bucket counts %d, %d", len(b.Counts), len(y.Counts))
	}
	// A batch of one record counts in the first bucket; some batch had
	// more than one (twenty committers at once).
	var over1 uint64
	for _, n := range b.Counts[1:] {
		over1 += n
	}
	if over1 == 0 {
		t.Errorf("no batch of more than one record: %+v", b)
	}
}

// Each observation lands in the first bucket whose bound is not below it.
func TestHistBuckets(t *testing.T) {
	h := newHist([]float64{1, 2, 4}, 1)
	for _, v := range []float64{0, 1, 1.5, 2, 3, 4, 5, 100} {
		h.observe(v, uint64(v))
	}
	got := h.snapshot()
	want := []uint64{2, 2, 2, 2}
	for i := range want {
		if got.Counts[i] != want[i] {
			t.Fatalf("Counts = %v, want %v", got.Counts, want)
		}
	}
	if got.Count != 8 || got.Sum != 116 {
		t.Errorf("Count %d Sum %v, want 8 116", got.Count, got.Sum)
	}
}
