package queue

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
)

// TestEnvelopeSplitFields: Outgoing and Parent survive the journal, and an
// envelope without them is encoded as before (no trailing field).
func TestEnvelopeSplitFields(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	plain := testEnvelope(1, 3)
	child := testEnvelope(2, 0)
	child.Rcpts = []Recipient{{RID: 2, Addr: "c@example.com"}}
	child.Parent, child.Outgoing = 1, true
	commit(t, s, plain, testBody(1, 500))
	commit(t, s, child, testBody(2, 500))
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	checkMessage(t, s, plain, testBody(1, 500))
	checkMessage(t, s, child, testBody(2, 500))
	old := appendMessagePrefix(nil, 1, plain)
	plain.Parent = 0
	if got := appendMessagePrefix(nil, 1, plain); !slices.Equal(got, old) {
		t.Error("an envelope without a parent changed its encoding")
	}
}

// TestSplitRecovery: a child committed without its parent's Moved state (a
// crash between the two) still takes its recipients from the parent after
// reopen; with the state written, the same; the parent's other recipients
// stay pending.
func TestSplitRecovery(t *testing.T) {
	ctx := context.Background()
	for _, durable := range []bool{false, true} {
		dir := t.TempDir()
		s := openSpool(t, dir, Options{})
		commit(t, s, testEnvelope(1, 3), testBody(1, 300))
		child := testEnvelope(2, 0)
		child.Rcpts = []Recipient{{RID: 1, Addr: "rcpt1-1@example.com"}, {RID: 2, Addr: "rcpt1-2@example.com"}}
		child.Parent = 1
		commit(t, s, child, testBody(1, 300))
		if durable {
			if err := s.SetRecipientState(ctx, 1, []int{1, 2}, RecipientState{Status: Moved}); err != nil {
				t.Fatal(err)
			}
		}
		closeSpool(t, s)
		s = openSpool(t, dir, Options{})
		states, err := s.RecipientStates(1)
		if err != nil {
			t.Fatal(err)
		}
		if states[0].Status != Pending || states[1].Status != Moved || states[2].Status != Moved {
			t.Errorf("durable=%v: parent states %+v, want RID 0 pending, 1 and 2 moved", durable, states)
		}
		// Only a split the parent did not record is the work queue's to
		// record (and to log again).
		if got, want := s.Recovery().Splits, map[bool][]uint64{false: {2}, true: nil}[durable]; !slices.Equal(got, want) {
			t.Errorf("durable=%v: Recovery.Splits = %v, want %v", durable, got, want)
		}
		// Once the child is finished the parent must hold the Moved state
		// by itself (the work queue writes it before the child goes on).
		if err := s.Finish(ctx, 2); err != nil {
			t.Fatal(err)
		}
		closeSpool(t, s)
		s = openSpool(t, dir, Options{})
		states, _ = s.RecipientStates(1)
		if got := states[1].Status == Moved; got != durable {
			t.Errorf("durable=%v: after the child finished, RID 1 moved = %v", durable, got)
		}
		closeSpool(t, s)
	}
}

// TestEnvelopeBounceFields: a DSN's BounceOf and BounceRIDs survive the
// journal (and a compaction copy); an envelope with one and not the
// other is refused.
func TestEnvelopeBounceFields(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	dsn := &Envelope{MID: 2, Rcpts: []Recipient{{0, "sender@example.net"}}, BounceOf: 1, BounceRIDs: []int{0, 2}, SMTPUTF8: true, Auth: []byte("a")}
	commit(t, s, dsn, testBody(2, 100))
	for _, bad := range []*Envelope{
		{MID: 3, Rcpts: []Recipient{{0, "a@b"}}, BounceOf: 1},
		{MID: 3, Rcpts: []Recipient{{0, "a@b"}}, BounceRIDs: []int{1}},
		{MID: 3, Rcpts: []Recipient{{0, "a@b"}}, BounceOf: 1, BounceRIDs: []int{-1}},
	} {
		if err := s.Commit(context.Background(), bad, []byte("x")); err == nil {
			t.Errorf("Commit(%+v) took it", bad)
		}
	}
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	checkMessage(t, s, dsn, testBody(2, 100))
}

// TestBounceRecovery: a DSN committed without its message's own record
// (a crash between the two writes) makes the recipients it reports
// bounced after reopen, and is listed in Recovery.Bounces; a message that
// recorded them, one that finished, or a DSN that finished, is left as it
// was.
func TestBounceRecovery(t *testing.T) {
	ctx := context.Background()
	const origin, dsnMID = 1, 2
	bounced := RecipientState{Status: Bounced, Attempts: 2, Reason: "550 no such user"}
	for _, c := range []struct {
		name string
		// after the DSN's commit, before the crash
		then func(s *Spool) error
		// the origin's RIDs 0, 1, 2 after reopen ("" is finished)
		want    []Status
		bounces []uint64
	}{
		{"crash right after the DSN", func(*Spool) error { return nil }, []Status{Bounced, Pending, Bounced}, []uint64{dsnMID}},
		{"the message recorded them", func(s *Spool) error { return s.SetRecipientState(ctx, origin, []int{0, 2}, bounced) }, []Status{Bounced, Pending, Bounced}, nil},
		{"the message finished", func(s *Spool) error { return s.Finish(ctx, origin) }, nil, nil},
		{"the DSN went", func(s *Spool) error { return s.Finish(ctx, dsnMID) }, []Status{Pending, Pending, Pending}, nil},
		{"one was delivered before", func(s *Spool) error {
			return s.SetRecipientState(ctx, origin, []int{2}, RecipientState{Status: Delivered, Attempts: 1})
		}, []Status{Bounced, Pending, Delivered}, []uint64{dsnMID}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openSpool(t, dir, Options{})
			commit(t, s, testEnvelope(origin, 3), testBody(origin, 300))
			// RID 0 failed softly once before.
			if err := s.SetRecipientState(ctx, origin, []int{0}, RecipientState{Status: Pending, Attempts: 1, Last: time.Unix(100, 0)}); err != nil {
				t.Fatal(err)
			}
			commit(t, s, &Envelope{MID: dsnMID, Rcpts: []Recipient{{0, "sender1@example.net"}}, BounceOf: origin, BounceRIDs: []int{0, 2}}, testBody(dsnMID, 200))
			if err := c.then(s); err != nil {
				t.Fatal(err)
			}
			closeSpool(t, s)
			s = openSpool(t, dir, Options{})
			defer closeSpool(t, s)
			if got := s.Recovery().Bounces; !slices.Equal(got, c.bounces) {
				t.Errorf("Recovery.Bounces = %v, want %v", got, c.bounces)
			}
			states, err := s.RecipientStates(origin)
			if c.want == nil {
				if err == nil {
					t.Errorf("the finished message is back: %+v", states)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for rid, w := range c.want {
				if states[rid].Status != w {
					t.Errorf("RID %d: %+v, want %v", rid, states[rid], w)
				}
			}
			if c.bounces != nil {
				// What the recipient had before stays: its attempts.
				if st := states[0]; st.Attempts != 1 || !st.Last.Equal(time.Unix(100, 0)) || st.Reason != "bounced: DSN MID 2" {
					t.Errorf("RID 0 recovered as %+v", st)
				}
			}
		})
	}
}

// TestWorkRecord: the work queue's outcome is recovered, and survives the
// compaction that moves its message.
func TestWorkRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSpool(t, dir, Options{SegmentSize: 16 << 10})
	const n = 40
	for mid := uint64(1); mid <= n; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 1000))
	}
	w := Work{Headers: "X-Test: tagged\r\n", Strip: []string{"x-spam", "received"}, TagSubject: "[SPAM] ", Route: "127.0.0.1:2525", Rcpt: "abuse@example.com"}
	if err := s.SetWork(ctx, 1, w); err != nil {
		t.Fatal(err)
	}
	if _, done, _ := s.Work(2); done {
		t.Error("MID 2 has a work outcome it was never given")
	}
	old := segFiles(t, dir)
	for mid := uint64(2); mid <= n; mid++ {
		if err := s.Finish(ctx, mid); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "MID 1's segment compacted away", func() bool {
		return !slices.Contains(segFiles(t, dir), old[0])
	})
	check := func(when string) {
		t.Helper()
		got, done, err := s.Work(1)
		if err != nil || !done || !reflect.DeepEqual(got, w) {
			t.Errorf("%s: Work(1) = %+v, %v, %v; want %+v", when, got, done, err, w)
		}
	}
	check("after compaction")
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	check("after reopen")
	if err := s.SetWork(ctx, 99, w); err == nil {
		t.Error("SetWork of an unknown MID succeeded")
	}
}

// TestWorkQuarantine: a quarantined message's work record (its quarantines,
// the stage to resume at, deleted and released) survives compaction and a
// reopen; each later record replaces the one before; a record without
// those fields keeps the version-1 encoding.
func TestWorkQuarantine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSpool(t, dir, Options{SegmentSize: 16 << 10})
	const n = 40
	for mid := uint64(1); mid <= n; mid++ {
		commit(t, s, testEnvelope(mid, 1), testBody(mid, 1000))
	}
	since := time.Unix(1700000000, 123)
	held := Work{Headers: "X-A: 1\r\n", Stage: 2, Held: []Held{
		{Quarantine: "Policy", Reason: "content filter:f1", Since: since},
		{Quarantine: "Virus", Reason: "Anti-Virus", Since: since.Add(time.Second)}}}
	if !held.Pending() {
		t.Error("a held message's work is not pending")
	}
	if err := s.SetWork(ctx, 1, held); err != nil {
		t.Fatal(err)
	}
	want := Work{Headers: held.Headers, Stage: 2, Held: slices.Clone(held.Held)}
	want.Held[0].Out = Deleted
	if !want.Deleted() || !want.Quarantined() || want.In("Policy") || !want.In("Virus") {
		t.Errorf("deleted from Policy, in Virus: Deleted %v, Quarantined %v, In(Policy) %v, In(Virus) %v",
			want.Deleted(), want.Quarantined(), want.In("Policy"), want.In("Virus"))
	}
	if err := s.SetWork(ctx, 1, want); err != nil {
		t.Fatal(err)
	}
	released := Work{Headers: "X-B: 2\r\n", Stage: 1, Released: true}
	if err := s.SetWork(ctx, 2, released); err != nil {
		t.Fatal(err)
	}
	old := segFiles(t, dir)
	for mid := uint64(3); mid <= n; mid++ {
		if err := s.Finish(ctx, mid); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "the first segment compacted away", func() bool {
		return !slices.Contains(segFiles(t, dir), old[0])
	})
	check := func(when string) {
		t.Helper()
		for mid, w := range map[uint64]Work{1: want, 2: released} {
			got, ok, err := s.Work(mid)
			if err != nil || !ok || !reflect.DeepEqual(got, w) {
				t.Errorf("%s: Work(%d) = %+v, %v, %v; want %+v", when, mid, got, ok, err, w)
			}
		}
	}
	check("after compaction")
	closeSpool(t, s)
	s = openSpool(t, dir, Options{})
	defer closeSpool(t, s)
	check("after reopen")
	if (Work{Headers: "X: y\r\n"}).Pending() {
		t.Error("a done work record is pending")
	}
	if b := appendWork(nil, 7, Work{Headers: "X: y\r\n"}); b[0] != payloadVersion {
		t.Errorf("a plain work record is written as version %d", b[0])
	}
	for _, w := range []Work{held, want, released, {}} {
		mid, got, err := decodeWork(appendWork(nil, 9, w))
		if err != nil || mid != 9 || !reflect.DeepEqual(got, w) {
			t.Errorf("decode(encode(%+v)) = %d, %+v, %v", w, mid, got, err)
		}
	}
}
