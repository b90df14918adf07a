package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mailgate/mailgate/internal/wait"
)

// Compaction moves large messages between files, not through memory, and
// rewrites their checksums when the segment they leave was written under
// another salt (here: the newest segment comes from another spool); after a
// reopen, whose recovery checks every record, they read back whole. Both
// ways of copying are run.
func TestCompactionCopiesAcrossSalts(t *testing.T) {
	for _, streamAt := range []int64{256 << 10, 1 << 30} {
		t.Run(fmt.Sprintf("streamAt=%d", streamAt), func(t *testing.T) {
			defer func(v int64) { compactStreamAt = v }(compactStreamAt)
			compactStreamAt = streamAt
			dir := t.TempDir()
			ctx := context.Background()
			o := Options{SegmentSize: 1 << 20, NoSync: true}
			s := openSpool(t, dir, o)
			const n, size = 8, 300 << 10
			for mid := uint64(1); mid <= n; mid++ {
				commit(t, s, testEnvelope(mid, 2), testBody(mid, size))
			}
			closeSpool(t, s)
			seqs, err := listSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
			next := seqs[len(seqs)-1] + 1
			hdr := make([]byte, segHeaderSize)
			putSegHeader(hdr, next, 0x5eed5a17)
			if err := os.WriteFile(filepath.Join(dir, segName(next)), hdr, 0o600); err != nil {
				t.Fatal(err)
			}

			s = openSpool(t, dir, o)
			if s.salt != 0x5eed5a17 {
				t.Fatalf("salt %08x, want the newest segment's", s.salt)
			}
			keep := map[uint64]bool{1: true, 4: true, 7: true}
			for mid := uint64(1); mid <= n; mid++ {
				if !keep[mid] {
					if err := s.Finish(ctx, mid); err != nil {
						t.Fatal(err)
					}
				}
			}
			wait.Until(t, "the old segments compacted away", func() bool {
				files := segFiles(t, dir)
				return !slices.ContainsFunc(seqs, func(q uint64) bool { return slices.Contains(files, segName(q)) })
			})
			check := func(when string) {
				t.Helper()
				if got := len(s.Messages()); got != len(keep) {
					t.Fatalf("%s: %d messages, want %d", when, got, len(keep))
				}
				for mid := range keep {
					checkMessage(t, s, testEnvelope(mid, 2), testBody(mid, size))
				}
			}
			check("after compaction")
			closeSpool(t, s)
			s = openSpool(t, dir, o)
			defer closeSpool(t, s)
			if rec := s.Recovery(); len(rec.Corrupt) > 0 {
				t.Errorf("corrupt after reopen: %v", rec.Corrupt)
			}
			check("after reopen")
		})
	}
}
