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
