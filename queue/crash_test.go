package queue

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test: a child process (this test binary, re-executed) commits,
// updates and finishes messages from many goroutines and prints a line
// right after each call returned nil; the parent kills it with SIGKILL at a
// random moment, reopens the spool and checks that everything printed is on
// disk. Nothing the child printed was printed before it was durable, so
// nothing printed may be missing.

const crashDirEnv = "QUEUE_CRASH_DIR"

// The child's fate for each MID, by MID % 8: finish it (0-3), give RID 0 a
// state and then finish it (4), give RID 0 a state (5), leave it (6, 7).
// Most messages finish, so segments die, get compacted and get deleted
// while the child runs.
func crashPlan(mid uint64) (setState, finish bool) {
	switch mid % 8 {
	case 0, 1, 2, 3:
		return false, true
	case 4:
		return true, true
	case 5:
		return true, false
	}
	return false, false
}

// crashBodySize: MIDs left live by 6 are large and committed through a
// Stage, so that kills land while a stage is written and while the writer
// copies one into the journal.
func crashBodySize(mid uint64) int {
	if crashStaged(mid) {
		return 100<<10 + int(mid*7919%(300<<10))
	}
	return 200 + int(mid*7919%4000)
}

func crashStaged(mid uint64) bool { return mid%8 == 6 }

func crashCommit(ctx context.Context, s *Spool, mid uint64) error {
	env, body := testEnvelope(mid, 2), testBody(mid, crashBodySize(mid))
	if !crashStaged(mid) {
		return s.Commit(ctx, env, body)
	}
	st, err := s.NewStage()
	if err != nil {
		return err
	}
	for p := body; len(p) > 0; p = p[min(len(p), 32<<10):] {
		if _, err := st.Write(p[:min(len(p), 32<<10)]); err != nil {
			st.Abort()
			return err
		}
	}
	return s.CommitStage(ctx, env, st)
}

var crashState = RecipientState{Status: Delivered, Attempts: 1, Reason: "250 ok"}

func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	if err := crashChild(dir); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func crashChild(dir string) error {
	s, err := Open(dir, Options{SegmentSize: 64 << 10, Logger: quiet})
	if err != nil {
		return err
	}
	c, err := OpenCounters(filepath.Join(dir, "counters"))
	if err != nil {
		return err
	}
	if err := c.Ensure(MID, s.MaxMID()); err != nil {
		return err
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		out.Lock()
		defer out.Unlock()
		os.Stdout.WriteString(line) // one write per line: a kill never splits one
	}
	// A slower disk, so that kills often land while two batches are in
	// flight: one synced, the next written and syncing beside it. The
	// child says once that it saw two syncs at once.
	var syncing atomic.Int32
	var overlapped sync.Once
	s.syncFile = func(f *os.File) error {
		if syncing.Add(1) == 2 {
			overlapped.Do(func() { say("O 0") })
		}
		defer syncing.Add(-1)
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) // the disk's latency, not a wait for state
		return fdatasync(f)
	}
	say("ready")
	// Bounded: the parent kills the child long before this ends.
	deadline := time.Now().Add(60 * time.Second)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				mid, err := c.Next(MID)
				if err != nil {
					errs <- err
					return
				}
				if err := crashCommit(ctx, s, mid); err != nil {
					errs <- err
					return
				}
				say("C %d", mid)
				setState, finish := crashPlan(mid)
				if setState {
					if err := s.SetRecipientState(ctx, mid, []int{0}, crashState); err != nil {
						errs <- err
						return
					}
					say("S %d", mid)
				}
				if finish {
					if err := s.Finish(ctx, mid); err != nil {
						errs <- err
						return
					}
					say("F %d", mid)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	dir := t.TempDir()
	committed := map[uint64]bool{}
	stated := map[uint64]bool{}
	finished := map[uint64]bool{}
	var highest uint64
	var total, overlaps int
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l, ok := <-lines; !ok || l != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start (%q)", round, l)
		}
		killAt := time.After(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		var got []string
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				got = append(got, l)
			case <-killAt:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killAt = nil
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v) before the kill", round, err)
		}

		roundLow := uint64(0)
		overlapped := false
		for _, l := range got {
			op, num, _ := strings.Cut(l, " ")
			if op == "O" {
				overlapped = true
				continue
			}
			mid, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				t.Fatalf("round %d: bad line %q", round, l)
			}
			switch op {
			case "C":
				committed[mid] = true
				if mid <= highest {
					t.Errorf("round %d: MID %d repeats or goes back (highest before: %d)", round, mid, highest)
				}
				if roundLow == 0 || mid < roundLow {
					roundLow = mid
				}
			case "S":
				stated[mid] = true
			case "F":
				finished[mid] = true
			default:
				t.Fatalf("round %d: bad line %q", round, l)
			}
		}
		for _, l := range got {
			if mid, err := strconv.ParseUint(strings.TrimPrefix(l, "C "), 10, 64); err == nil {
				highest = max(highest, mid)
			}
		}
		total += len(got)
		if overlapped {
			overlaps++
		}

		s := openSpool(t, dir, Options{})
		rec := s.Recovery()
		if len(rec.Corrupt) != 0 {
			t.Errorf("round %d: corruption after a kill: %v", round, rec.Corrupt)
		}
		live := map[uint64]bool{}
		for _, mid := range s.Messages() {
			live[mid] = true
		}
		for mid := range committed {
			_, finish := crashPlan(mid)
			switch {
			case finished[mid]:
				if live[mid] {
					t.Errorf("round %d: MID %d finished but back", round, mid)
				}
			case !live[mid] && !finish:
				t.Errorf("round %d: acknowledged MID %d lost", round, mid)
			case live[mid]:
				checkMessage(t, s, testEnvelope(mid, 2), testBody(mid, crashBodySize(mid)))
				states, err := s.RecipientStates(mid)
				if err != nil {
					t.Fatal(err)
				}
				if stated[mid] && states[0].Status != crashState.Status {
					t.Errorf("round %d: MID %d state %+v lost", round, mid, states[0])
				}
			}
		}
		st := s.Stats()
		t.Logf("round %d (two syncs at once: %v): %d lines, recovered %d live in %d segments (truncated %d bytes); MIDs from %d",
			round, overlapped, len(got), st.Messages, st.Segments, rec.Truncated, roundLow)
		closeSpool(t, s)
		// Checked after Close, not after Open: the reopened spool may be
		// preparing its own next segment under a stage- name, which Close
		// removes. A stage the killed child left would still be here.
		if files := stageFiles(t, dir); len(files) > 0 {
			t.Errorf("round %d: stage files left: %v", round, files)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if total == 0 {
		t.Fatal("the child never committed anything")
	}
	// Not every round: a kill may come before the child gets going.
	if overlaps == 0 {
		t.Error("in no round did two syncs run at once before the kill")
	}

	c, err := OpenCounters(filepath.Join(dir, "counters"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if next, err := c.Next(MID); err != nil || next <= highest {
		t.Errorf("Next(MID) after the crashes = %d, %v; want > %d", next, err, highest)
	}
}
