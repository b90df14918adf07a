package queue

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func openCounters(t *testing.T, path string) *Counters {
	t.Helper()
	c, err := OpenCounters(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func next(t *testing.T, c *Counters, k Kind) uint64 {
	t.Helper()
	id, err := c.Next(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fileBound reads the persisted bound of kind k.
func fileBound(t *testing.T, path string, k Kind) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, num, ok := strings.Cut(sc.Text(), " "); ok && name == k.String() {
			n, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %v in %s", k, path)
	return 0
}

func TestCountersStartAndKinds(t *testing.T) {
	c := openCounters(t, filepath.Join(t.TempDir(), "counters"))
	defer c.Close()
	for _, k := range []Kind{ICID, MID, DCID} {
		for want := uint64(1); want <= 3; want++ {
			if got := next(t, c, k); got != want {
				t.Errorf("%v: Next = %d, want %d (kinds count separately, from 1)", k, got, want)
			}
		}
	}
	if _, err := c.Next(Kind(7)); err == nil {
		t.Error("Next of an unknown kind succeeded")
	}
}

// TestCountersCrash: reopening without Close, as after kill -9, never hands
// out an ID again, and the file always shows a bound above every ID handed
// out, which is what makes that true.
func TestCountersCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counters")
	var highest [numKinds]uint64
	for round := range 4 {
		c := openCounters(t, path) // the previous one was never closed
		for i := range 2*counterBlock + 17 {
			k := MID
			if i%5 == 0 {
				k = ICID
			}
			id := next(t, c, k)
			if id <= highest[k] {
				t.Fatalf("round %d: %v %d after %d", round, k, id, highest[k])
			}
			highest[k] = id
			if i%997 == 0 || id%counterBlock == 0 {
				if b := fileBound(t, path, k); b <= id {
					t.Fatalf("round %d: %v %d handed out while the file says %d", round, k, id, b)
				}
			}
		}
	}
}

func TestCountersCloseLeavesNoGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counters")
	c := openCounters(t, path)
	for range 10 {
		next(t, c, DCID)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(DCID); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	c = openCounters(t, path)
	defer c.Close()
	if got := next(t, c, DCID); got != 11 {
		t.Errorf("after a clean restart Next = %d, want 11", got)
	}
}

func TestCountersEnsure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counters")
	c := openCounters(t, path)
	next(t, c, MID)
	if err := c.Ensure(MID, 123456); err != nil {
		t.Fatal(err)
	}
	if got := next(t, c, MID); got != 123457 {
		t.Errorf("Next after Ensure(123456) = %d", got)
	}
	if err := c.Ensure(MID, 5); err != nil { // never backwards
		t.Fatal(err)
	}
	if got := next(t, c, MID); got != 123458 {
		t.Errorf("Next after Ensure(5) = %d", got)
	}
	if b := fileBound(t, path, MID); b <= 123458 {
		t.Errorf("file bound %d after handing out 123458", b)
	}
	c.Close()
}

func TestCountersConcurrent(t *testing.T) {
	c := openCounters(t, filepath.Join(t.TempDir(), "counters"))
	defer c.Close()
	const workers, each = 8, 3000
	ids := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				id, err := c.Next(MID)
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], id)
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, l := range ids {
		for _, id := range l {
			if seen[id] || id == 0 {
				t.Fatalf("ID %d handed out twice or zero", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != workers*each {
		t.Errorf("%d IDs", len(seen))
	}
}

// TestCountersBadFile: a damaged file is an error, never a restart from 1.
func TestCountersBadFile(t *testing.T) {
	for _, content := range []string{
		"",
		"garbage\n",
		"mailgate counters 1\nICID 5\nMID 6\n",
		"mailgate counters 1\nICID 5\nMID 6\nDCID x\n",
		"mailgate counters 1\nICID 5\nMID 6\nDCID 0\n",
		"mailgate counters 1\nICID 5\nMID 6\nMID 7\nDCID 1\n",
		"mailgate counters 2\nICID 5\nMID 6\nDCID 7\n",
	} {
		path := filepath.Join(t.TempDir(), "counters")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if c, err := OpenCounters(path); err == nil {
			c.Close()
			t.Errorf("OpenCounters accepted %q", content)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("damaged file %q was rewritten to %q", content, b)
		}
	}
}

// Current is the last ID handed out, across a clean restart too.
func TestCountersCurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counters")
	c, err := OpenCounters(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Current(MID); n != 0 {
		t.Errorf("Current before any ID: %d", n)
	}
	for range 3 {
		if _, err := c.Next(MID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Next(DCID); err != nil {
		t.Fatal(err)
	}
	if m, d, i := c.Current(MID), c.Current(DCID), c.Current(ICID); m != 3 || d != 1 || i != 0 {
		t.Errorf("Current: MID %d DCID %d ICID %d, want 3 1 0", m, d, i)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err = OpenCounters(path); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := c.Current(MID); m != 3 {
		t.Errorf("Current after a restart: %d, want 3", m)
	}
	if n := c.Current(Kind(9)); n != 0 {
		t.Errorf("Current of no kind: %d", n)
	}
}
