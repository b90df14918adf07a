package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFsync measures what one durable append costs on this disk with
// no group commit: a write of a 1 KB record and an fsync. Its inverse is
// the ceiling of a spool that fsyncs once per message.
func BenchmarkFsync(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("append=%dKB", size>>10), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "f"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, size)
			for b.Loop() {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
		})
	}
	// Syncs of one file overlapping, as group commits would if the next
	// batch did not wait for the sync before: 4 KiB written in place (the
	// spool's zeroed stretch) and fdatasync, from 1 or 2 goroutines. The
	// latency is each sync's, from its write to its return.
	for _, par := range []int{1, 2} {
		b.Run(fmt.Sprintf("overlap=%d", par), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "f"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(64 << 20); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			var off, waited atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range par {
				wg.Go(func() {
					buf := make([]byte, 4096)
					for i := 0; i < b.N/par; i++ {
						t0 := time.Now()
						if _, err := f.WriteAt(buf, off.Add(4096)%(64<<20)); err != nil {
							b.Error(err)
							return
						}
						if err := fdatasync(f); err != nil {
							b.Error(err)
							return
						}
						waited.Add(int64(time.Since(t0)))
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
			b.ReportMetric(float64(waited.Load())/float64(b.N)/1e3, "µs/sync")
		})
	}
}

// BenchmarkCommit commits messages from many goroutines at once, as SMTP
// sessions do, and reports messages and fsyncs per second.
func BenchmarkCommit(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, size := range []int{1 << 10, 10 << 10} {
			for _, par := range []int{20, 100} {
				name := fmt.Sprintf("size=%dKB/par=%d/fsync=%v", size>>10, par, sync)
				b.Run(name, func(b *testing.B) { benchCommit(b, size, par, !sync) })
			}
		}
	}
}

func benchCommit(b *testing.B, size, par int, noSync bool) {
	s := openSpool(b, b.TempDir(), Options{NoSync: noSync})
	body := testBody(1, size)
	var next atomic.Uint64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range par {
		wg.Go(func() {
			for {
				mid := next.Add(1)
				if mid > uint64(b.N) {
					return
				}
				if err := s.Commit(context.Background(), testEnvelope(mid, 1), body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(st.Syncs)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(st.Records)/float64(max(st.Batches, 1)), "msgs/batch")
	closeSpool(b, s)
}

// BenchmarkRecover measures Open of a spool holding 50,000 queued 1 KB
// messages (about 60 MB): the restart time of a loaded gateway.
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	s := openSpool(b, dir, Options{NoSync: true})
	const n = 50000
	body := testBody(1, 1<<10)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for mid := uint64(w + 1); mid <= n; mid += 10 {
				if err := s.Commit(context.Background(), testEnvelope(mid, 1), body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeSpool(b, s)
	for b.Loop() {
		s := openSpool(b, dir, Options{})
		if got := s.Stats().Messages; got != n {
			b.Fatalf("%d messages", got)
		}
		closeSpool(b, s)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkList reads the envelopes of 1,000 queued messages of 100 KB, as
// the queue manager does when it takes them in (Head with no body) and as
// `mailgate queue list` does (Head with 8 KiB, for the header), against
// reading them whole (Read): the page cache holds the spool, so the
// difference is copying and checksumming, less than a cold disk's.
func BenchmarkList(b *testing.B) {
	s := openSpool(b, b.TempDir(), Options{NoSync: true})
	defer closeSpool(b, s)
	const n = 1000
	for mid := uint64(1); mid <= n; mid++ {
		commit(b, s, testEnvelope(mid, 2), testBody(mid, 100<<10))
	}
	read := map[string]func(mid uint64) error{
		"read":      func(mid uint64) error { _, _, err := s.Read(mid); return err },
		"head=0":    func(mid uint64) error { _, _, _, err := s.Head(mid, 0); return err },
		"head=8KiB": func(mid uint64) error { _, _, _, err := s.Head(mid, 8<<10); return err },
	}
	for _, name := range []string{"read", "head=0", "head=8KiB"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for mid := uint64(1); mid <= n; mid++ {
					if err := read[name](mid); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
