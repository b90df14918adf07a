package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/internal/wait"
)

// TestNoSpaceCutOff fills a real file system until a commit fails: the
// failure is ErrNoSpace (not the spool's end), the spool takes messages
// again as soon as there is room, without a reopen, and after a reopen
// every acknowledged message is there and the refused one is not, with no
// torn bytes left behind.
func TestNoSpaceCutOff(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	filler := tmpfs.Fill(t, dir, "filler", 2<<20)
	s := openSpool(t, dir+"/spool", Options{})
	ctx := context.Background()
	var acked []uint64
	refused := uint64(0)
	for mid := uint64(1); mid <= 200 && refused == 0; mid++ {
		// Sizes that are not multiples of a page, so that a failed write
		// leaves a partial record.
		err := s.Commit(ctx, testEnvelope(mid, 1), testBody(mid, 50_000+int(mid)*97))
		switch {
		case err == nil:
			acked = append(acked, mid)
		case errors.Is(err, ErrNoSpace) && !errors.Is(err, ErrFailed):
			refused = mid
		default:
			t.Fatalf("Commit MID %d: %v, want nil or ErrNoSpace", mid, err)
		}
	}
	if refused == 0 || len(acked) < 10 {
		t.Fatalf("acked %d, refused MID %d: the file system never filled up", len(acked), refused)
	}
	// The refused record's bytes are cut off at once: a crash now must
	// not find them (with space this short no zeros are written ahead, so
	// the files hold the records and nothing else).
	var onDisk int64
	for _, f := range segFiles(t, dir+"/spool") {
		fi, err := os.Stat(filepath.Join(dir, "spool", f))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += fi.Size()
	}
	if st := s.Stats(); onDisk != st.Bytes {
		t.Errorf("segment files hold %d bytes, the acknowledged records %d: the failed write was not cut off", onDisk, st.Bytes)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Room again, no reopen: a small message now, then one as large as the
	// refused one.
	next := refused + 1
	commit(t, s, testEnvelope(next, 1), testBody(next, 300))
	commit(t, s, testEnvelope(next+1, 1), testBody(next+1, 50_000+int(refused)*97))
	acked = append(acked, next, next+1)
	closeSpool(t, s)

	s = openSpool(t, dir+"/spool", Options{})
	defer closeSpool(t, s)
	if rec := s.Recovery(); rec.Truncated != 0 || len(rec.Corrupt) != 0 {
		t.Errorf("recovery found a torn tail of %d bytes and %d corrupt regions; a cut-off batch must leave nothing", rec.Truncated, len(rec.Corrupt))
	}
	if got := s.Messages(); !slices.Equal(got, acked) {
		t.Fatalf("after reopen Messages() = %v, want the acknowledged %v (MID %d was refused)", got, acked, refused)
	}
	for _, mid := range acked[:len(acked)-2] {
		checkMessage(t, s, testEnvelope(mid, 1), testBody(mid, 50_000+int(mid)*97))
	}
}

// TestNoSpaceAfterWrite: the record of a batch is written whole and only
// its fsync fails with ENOSPC (a thin-provisioned or network disk; on a
// local one, the zeros written ahead). The commit gets ErrNoSpace, so its
// sender retries; the record must then never come back, or the message is
// delivered twice.
func TestNoSpaceAfterWrite(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	commit(t, s, testEnvelope(1, 1), testBody(1, 100))
	var mu sync.Mutex
	fail, errno := true, syscall.ENOSPC
	s.syncFile = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return fmt.Errorf("injected: %w", errno)
		}
		return fdatasync(f)
	}
	err := s.Commit(context.Background(), testEnvelope(2, 1), testBody(2, 5000))
	if !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrFailed) {
		t.Fatalf("Commit with its fsync failing ENOSPC: %v, want ErrNoSpace", err)
	}
	if got := s.Messages(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("Messages() = %v, want [1]", got)
	}
	commit(t, s, testEnvelope(3, 1), testBody(3, 100)) // the spool goes on
	// A refused record last in the segment, as a crash would find it.
	mu.Lock()
	fail, errno = true, syscall.EDQUOT
	mu.Unlock()
	if err := s.Commit(context.Background(), testEnvelope(4, 1), testBody(4, 5000)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Commit with its fsync failing EDQUOT: %v, want ErrNoSpace", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	if got := s.Messages(); !slices.Equal(got, []uint64{1, 3}) {
		t.Errorf("after reopen Messages() = %v, want [1 3]: MIDs 2 and 4 were refused", got)
	}
}

// TestFloor: below the free-space floor Room and Commit refuse with
// ErrNoSpace, the records that free space are still written, each
// transition is logged once, and the spool takes messages again by itself
// when space returns.
func TestFloor(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	var logBuf syncBuffer
	s := openSpool(t, dir+"/spool", Options{MinFree: 2 << 20, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	defer closeSpool(t, s)
	ctx := context.Background()
	commit(t, s, testEnvelope(1, 1), testBody(1, 1000))
	if err := s.Room(0); err != nil {
		t.Fatalf("Room with 8 MiB free: %v", err)
	}
	if err := s.Room(4 << 20); err != nil {
		t.Errorf("Room for a message of 4 MiB with 8 MiB free: %v", err)
	}
	if err := s.Room(7 << 20); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Room for a message of 7 MiB with 8 MiB free and a floor of 2 MiB: %v, want ErrNoSpace", err)
	}
	filler := tmpfs.Fill(t, dir, "filler", 1<<20)
	wait.Until(t, "Room refuses below the floor", func() bool { return errors.Is(s.Room(0), ErrNoSpace) })
	if err := s.Commit(ctx, testEnvelope(2, 1), testBody(2, 1000)); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Commit below the floor: %v, want ErrNoSpace", err)
	}
	if err := s.SetRecipientState(ctx, 1, []int{0}, RecipientState{Status: Delivered}); err != nil {
		t.Errorf("SetRecipientState below the floor: %v", err)
	}
	if err := s.Finish(ctx, 1); err != nil {
		t.Errorf("Finish below the floor: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "Room accepts again", func() bool { return s.Room(0) == nil })
	commit(t, s, testEnvelope(3, 1), testBody(3, 1000))
	log := logBuf.String()
	if n := strings.Count(log, "free space below the floor"); n != 1 {
		t.Errorf("%d lines for going below the floor, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "free space above the floor again"); n != 1 {
		t.Errorf("%d lines for coming back above the floor, want 1:\n%s", n, log)
	}
}

// TestSpaceReturnedWhenTight: with space short, the finished messages'
// space comes back long before the segment reaches SegmentSize: the
// segment is rolled early, its live remainder compacted, and it is deleted.
func TestSpaceReturnedWhenTight(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	tmpfs.Fill(t, dir, "filler", 3<<20) // below tightMin
	s := openSpool(t, dir+"/spool", Options{})
	defer closeSpool(t, s)
	ctx := context.Background()
	const n = 24
	for mid := uint64(1); mid <= n; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 64<<10))
	}
	before := tmpfs.Free(t, dir)
	t0 := time.Now()
	for mid := uint64(1); mid < n; mid++ { // all but the last
		if err := s.Finish(ctx, mid); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "the finished messages' segment deleted", func() bool {
		st := s.Stats()
		return st.Rolled > 0 && st.Deleted > 0 && st.Segments == 1
	})
	got := tmpfs.Free(t, dir)
	t.Logf("finishing %d messages of 64 KiB returned %d bytes in %v", n-1, got-before, time.Since(t0).Round(time.Millisecond))
	if got < before+(n-2)*64<<10 {
		t.Errorf("free space %d after finishing %d messages of 64 KiB, was %d: not returned", got, n-1, before)
	}
	checkMessage(t, s, testEnvelope(n, 1), testBody(n, 64<<10))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestCompactionAfterNoSpace: a compaction batch that runs out of space is
// cut off like any other; compaction starts that segment over after a
// pause, and its space still comes back.
func TestCompactionAfterNoSpace(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	tmpfs.Fill(t, dir, "filler", 3<<20) // below tightMin
	s := openSpool(t, dir+"/spool", Options{})
	defer closeSpool(t, s)
	var mu sync.Mutex
	syncs := map[string]int{}
	s.syncFile = func(f *os.File) error {
		mu.Lock()
		syncs[filepath.Base(f.Name())]++
		n := syncs[filepath.Base(f.Name())]
		mu.Unlock()
		// The second segment's first sync is its header's; its second is
		// the first batch written to it: the compaction copies.
		if filepath.Base(f.Name()) == segName(2) && n == 2 {
			return syscall.ENOSPC
		}
		return fdatasync(f)
	}
	ctx := context.Background()
	const n = 24
	for mid := uint64(1); mid <= n; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 64<<10))
	}
	for mid := uint64(3); mid <= n; mid++ { // MIDs 1 and 2 stay, to be copied
		// The failed batch may be a finish's too; the delivery side
		// tries again, as here.
		err := s.Finish(ctx, mid)
		if errors.Is(err, ErrNoSpace) {
			err = s.Finish(ctx, mid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "the first segment compacted and deleted", func() bool {
		st := s.Stats()
		return st.Rolled > 0 && st.Deleted > 0 && st.Segments == 1
	})
	mu.Lock()
	failed := syncs[segName(2)] >= 2
	mu.Unlock()
	if !failed {
		t.Fatal("the compaction batch's sync was never failed: the test does not test")
	}
	for mid := uint64(1); mid <= 2; mid++ {
		checkMessage(t, s, testEnvelope(mid, 1), testBody(mid, 64<<10))
	}
}

// TestStageFloor: a stage meets the floor as it is written, not the end of
// the disk: a large message arriving while space runs out is refused with
// ErrNoSpace (452 to the client) while room is left for the journal.
func TestStageFloor(t *testing.T) {
	dir := tmpfs.Mount(t, 16<<20)
	s := openSpool(t, dir+"/spool", Options{MinFree: 4 << 20})
	defer closeSpool(t, s)
	st, err := s.NewStage()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Abort()
	chunk := make([]byte, 64<<10)
	var werr error
	for i := 0; i < 16<<20/len(chunk) && werr == nil; i++ {
		_, werr = st.Write(chunk)
	}
	if !errors.Is(werr, ErrNoSpace) {
		t.Fatalf("stage write on a filling disk: %v, want ErrNoSpace", werr)
	}
	if errors.Is(werr, syscall.ENOSPC) {
		t.Errorf("the stage ran the disk full (%v) instead of stopping at the floor", werr)
	}
}
