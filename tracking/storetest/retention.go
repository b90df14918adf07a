package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
)

// countingStore records the batch sizes Prune is asked for.
type countingStore struct {
	tracking.Store
	asked []int
}

func (c *countingStore) Prune(ctx context.Context, before time.Time, n int) (tracking.Pruned, error) {
	c.asked = append(c.asked, n)
	return c.Store.Prune(ctx, before, n)
}

// kept returns the MIDs of host's messages the store still holds, of
// 1..n, in order.
func kept(t *testing.T, s tracking.Store, host string, n int) []uint64 {
	t.Helper()
	var k tracking.Keys
	for mid := range uint64(n) {
		k.Messages = append(k.Messages, tracking.MessageKey{Host: host, MID: mid + 1})
	}
	var mids []uint64
	for _, m := range load(t, s, k).Messages {
		mids = append(mids, m.MID)
	}
	slices.Sort(mids)
	return mids
}

// testRetainAge: the messages older than the bound go, in batches, with
// the connections and gaps older than every message kept; the newer stay
// as they were.
func testRetainAge(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	const n, old = 2500, 2000 // message i starts at base + i ms
	b := Messages("esa1.example.com", 1, n, true)
	write(t, s, b)
	for _, g := range []tracking.Gap{
		{Host: "esa1.example.com", From: at(-time.Hour), To: at(-time.Minute), Noted: at(0)},
		{Host: "esa1.example.com", From: at(old * time.Millisecond), To: at(time.Hour), Noted: at(time.Hour)},
	} {
		if err := s.AddGap(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	cs := &countingStore{Store: s}
	r := &tracking.Retention{MaxAge: 24 * time.Hour, Batch: 300}
	p, err := r.Enforce(ctx, cs, at(24*time.Hour+old*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if p.Messages != old {
		t.Errorf("deleted %d messages, want %d", p.Messages, old)
	}
	if len(cs.asked) < old/300 || slices.Max(cs.asked) > 300 {
		t.Errorf("Prune asked for %v: want batches of at most 300", cs.asked)
	}
	got := kept(t, s, "esa1.example.com", n)
	if len(got) != n-old || got[0] != old+1 {
		t.Fatalf("kept %d messages from MID %v, want %d from %d", len(got), got[:min(1, len(got))], n-old, old+1)
	}
	// What is kept is as it was written.
	want := &tracking.Batch{Messages: b.Messages[old:]}
	sameRecords(t, load(t, s, keysOf(want)), want)
	connsKept(t, s, b.Conns, b.Messages[old].Started)
	gaps, err := s.Gaps(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || !gaps[0].To.Equal(at(time.Hour)) {
		t.Errorf("gaps after pruning: %v, want the newer one only", gaps)
	}
	// A second round finds nothing more to delete.
	if p, err := r.Enforce(ctx, s, at(24*time.Hour+old*time.Millisecond)); err != nil || p.Messages != 0 {
		t.Errorf("second round: deleted %+v, %v; want nothing", p, err)
	}
}

// testRetainSize: beyond the size bound the oldest messages go, down to
// 90 % of it; a second round leaves the store alone, whether or not its
// files shrank.
func testRetainSize(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	const n = 3000
	b := Messages("esa1.example.com", 1, n, true)
	write(t, s, b)
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Messages != n || u.Bytes <= 0 {
		t.Fatalf("usage %+v, want %d messages and some bytes", u, n)
	}
	r := &tracking.Retention{MaxSize: u.Bytes / 2, Batch: 500}
	p, err := r.Enforce(ctx, s, at(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// 90 % of half the bytes: at most 45 % of the messages stay (fewer
	// when the store's size is not in proportion and it prunes again).
	want := n - n*45/100
	if p.Messages < want-2 || p.Messages >= n {
		t.Errorf("deleted %d messages, want %d or a few hundred more", p.Messages, want)
	}
	got := kept(t, s, "esa1.example.com", n)
	if len(got) != n-p.Messages || (len(got) > 0 && got[0] != uint64(p.Messages+1)) {
		t.Errorf("kept %d messages, the first %v: want the newest %d", len(got), got[:min(1, len(got))], n-p.Messages)
	}
	if len(got) > 0 {
		connsKept(t, s, b.Conns, b.Messages[got[0]-1].Started)
	}
	if u, err := s.Usage(ctx); err != nil || u.Messages != int64(len(got)) {
		t.Errorf("usage after pruning: %+v, %v; want %d messages", u, err, len(got))
	}
	if p, err := r.Enforce(ctx, s, at(time.Minute)); err != nil || p.Messages != 0 {
		t.Errorf("second round: deleted %+v, %v; want nothing", p, err)
	}
}

// testGaps: gaps of a host that overlap or touch are merged; Gaps returns
// those that overlap the range asked for, oldest first.
func testGaps(t *testing.T, s tracking.Store) {
	ctx := context.Background()
	add := func(host string, from, to time.Duration) {
		t.Helper()
		if err := s.AddGap(ctx, tracking.Gap{Host: host, From: at(from), To: at(to), Noted: at(to + time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	add("esa1", 10*time.Minute, 20*time.Minute)
	add("esa1", 15*time.Minute, 25*time.Minute) // overlaps: merged
	add("esa1", 25*time.Minute, 30*time.Minute) // touches: merged
	add("esa2", 12*time.Minute, 13*time.Minute) // another host
	add("esa1", 40*time.Minute, 50*time.Minute)
	type span struct {
		host     string
		from, to time.Duration
	}
	for _, tt := range []struct {
		from, to time.Time
		want     []span
	}{
		{time.Time{}, time.Time{}, []span{{"esa1", 10 * time.Minute, 30 * time.Minute}, {"esa2", 12 * time.Minute, 13 * time.Minute}, {"esa1", 40 * time.Minute, 50 * time.Minute}}},
		{at(31 * time.Minute), at(39 * time.Minute), nil},
		{at(30 * time.Minute), at(40 * time.Minute), []span{{"esa1", 10 * time.Minute, 30 * time.Minute}, {"esa1", 40 * time.Minute, 50 * time.Minute}}},
		{at(45 * time.Minute), time.Time{}, []span{{"esa1", 40 * time.Minute, 50 * time.Minute}}},
		{time.Time{}, at(11 * time.Minute), []span{{"esa1", 10 * time.Minute, 30 * time.Minute}}},
	} {
		gaps, err := s.Gaps(ctx, tt.from, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		var got []span
		for _, g := range gaps {
			got = append(got, span{g.Host, g.From.Sub(base), g.To.Sub(base)})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Gaps(%v, %v) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
	gaps, err := s.Gaps(ctx, at(40*time.Minute), at(40*time.Minute))
	if err != nil || len(gaps) != 1 || !gaps[0].Noted.Equal(at(50*time.Minute+time.Second)) {
		t.Errorf("the gap's time noted: %v, %v", gaps, err)
	}
}

// connsKept checks that of conns, those that began before oldest are gone
// and the others stored.
func connsKept(t *testing.T, s tracking.Store, conns []*tracking.Conn, oldest time.Time) {
	t.Helper()
	var before, after int
	for _, c := range conns {
		k := tracking.Keys{Conns: []tracking.ConnKey{{Host: c.Host, Kind: c.Kind, ID: c.ID}}}
		stored := len(load(t, s, k).Conns) == 1
		switch {
		case c.Started.Before(oldest) && stored:
			before++
		case !c.Started.Before(oldest) && !stored:
			after++
		}
	}
	if before > 0 || after > 0 {
		t.Errorf("%d connections older than the messages kept stayed, %d newer went", before, after)
	}
}
