package queue

import (
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// The in-memory index. It holds, per live message, where its record is and
// the state of each recipient, never a body. Recovery and the writer build
// it with the same apply functions, in log order, so a reopened spool has
// exactly the index the running one had.
//
// A segment may be deleted only when no record in it is still needed:
//
//   - the record of a live message (its latest copy), or a state record of
//     a live message written after that copy: "live pins";
//   - the finish record of a message some copy of whose message record is
//     still in an existing segment: "tomb pins". Deleting the finish record
//     first would bring the message back to life at the next recovery.
//
// Pins are taken and released only after the record that causes the change
// is durable, so a crash never finds a segment deleted too early.

type segment struct {
	seq  uint64
	path string
	f    *os.File
	salt uint32
	size int64 // bytes of whole records (plus header); the append offset of the current segment

	// zeroEnd is the file's length: past size the current segment holds a
	// stretch of zeros written ahead, so that appends overwrite allocated
	// blocks and fdatasync need not commit any metadata.
	zeroEnd int64

	damaged    bool // recovery found its header bad: never appended to
	removeFail bool // deleting it failed; left alone until the next Open

	livePins int   // live messages that need this segment
	tombPins int   // finish records that must outlive older copies
	copyCost int64 // bytes compaction would copy to release the live pins

	// mids lists the MIDs of the message records in this segment (copies
	// included), stateMids the MIDs that got a live pin here from a state
	// record, tombMids those that got a tomb pin. They let deletion update
	// tombs and let compaction find what to move without reading the file.
	// Records go only to the current segment, so once a segment is not
	// current these lists no longer grow.
	mids      []uint64
	stateMids []uint64
	tombMids  []uint64
	cursor    int // compaction progress through mids, stateMids, tombMids

	// refs counts users of f: one for the spool while the segment exists,
	// one for each Read in progress; the last release closes f.
	refs atomic.Int32
}

func (g *segment) acquire() { g.refs.Add(1) }

func (g *segment) release() {
	if g.refs.Add(-1) == 0 {
		// The file is deleted or the spool is closed, and it was fsynced
		// before; a close error cannot lose anything here.
		_ = g.f.Close()
	}
}

// entry is a live message.
type entry struct {
	seq uint64 // commit order, kept across compaction copies
	seg *segment
	off int64 // of the record header
	n   int64 // whole record length, header included
	// copies are the existing segments holding a message record for this
	// MID: seg, and older ones until they are deleted.
	copies []*segment
	// stateSegs are the segments after seg holding state records of this
	// message; each carries one live pin.
	stateSegs []*segment
	rcpts     []rcpt
	mid       uint64
	parent    uint64 // Envelope.Parent
	received  int64  // Envelope.Received (unixNano)
	work      *Work  // the work queue's outcome, nil when none was recorded
}

// rcpt is a recipient of a live message. Its domain is kept so that the
// queue's gauges by destination (Walk) need not read every envelope from
// the segments: that made tophosts take 3 s with 200,000 queued. The
// domain, not the address: a queue of messages of many long recipients
// would otherwise hold them all in memory.
type rcpt struct {
	rid    int32
	st     *RecipientState // nil: pending, never attempted
	domain string          // in lower case, shared (index.domain)
}

// tomb remembers a finished message while copies of its record remain.
type tomb struct {
	seg    *segment // holding the finish record
	copies int
}

type index struct {
	msgs   map[uint64]*entry
	tombs  map[uint64]*tomb
	segs   []*segment // ascending seq; the last one is written to
	maxMID uint64
	maxSeq uint64

	// domains interns the recipients' domains, so that the recipients of
	// one domain share one string. Cleared when it reaches maxDomains:
	// a bound, whatever domains the queue sees.
	domains map[string]string
}

const maxDomains = 4096

// domain returns the lower-case domain of addr ("" without an '@'),
// interned.
func (x *index) domain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	d := strings.ToLower(addr[i+1:])
	if s, ok := x.domains[d]; ok {
		return s
	}
	if x.domains == nil || len(x.domains) >= maxDomains {
		x.domains = make(map[string]string)
	}
	s := strings.Clone(d) // the caller's string may share a larger buffer
	x.domains[s] = s
	return s
}

func (x *index) pin(g *segment, e *entry) {
	g.livePins++
	g.copyCost += e.n
}

func (x *index) unpin(g *segment, e *entry) {
	g.livePins--
	g.copyCost -= e.n
}

func (x *index) unpinAll(e *entry) {
	x.unpin(e.seg, e)
	for _, g := range e.stateSegs {
		x.unpin(g, e)
	}
	e.stateSegs = nil
}

// applyMessage records a message record at g/off. A record for a MID that is
// already live is a compaction copy: it moves the message and supersedes its
// older state records (the copy is followed by a snapshot of the states).
func (x *index) applyMessage(g *segment, off, n int64, seq uint64, env *Envelope) {
	mid := env.MID
	x.maxMID = max(x.maxMID, mid)
	x.maxSeq = max(x.maxSeq, seq)
	if e := x.msgs[mid]; e != nil {
		if e.seg == g && e.off == off {
			return
		}
		x.unpinAll(e)
		if !slices.Contains(e.copies, g) {
			e.copies = append(e.copies, g)
			g.mids = append(g.mids, mid)
		}
		e.seg, e.off, e.n = g, off, n
		x.pin(g, e)
		return
	}
	// A MID with a tomb here was reused after a finish, which Commit
	// refuses; only a counter fault elsewhere gets here. The new message
	// is kept (never lose mail); the tomb's accounting may then keep some
	// segments longer than needed.
	e := &entry{seq: seq, seg: g, off: off, n: n, copies: []*segment{g}, mid: mid, parent: env.Parent,
		received: unixNano(env.Received)}
	e.rcpts = make([]rcpt, len(env.Rcpts))
	for i, r := range env.Rcpts {
		e.rcpts[i] = rcpt{rid: int32(r.RID), domain: x.domain(r.Addr)}
	}
	x.msgs[mid] = e
	g.mids = append(g.mids, mid)
	x.pin(g, e)
}

// applyState records a state record at g. It reports false when the message
// is not live (finished, or its records are gone).
func (x *index) applyState(g *segment, mid uint64, states []ridState) bool {
	e := x.msgs[mid]
	if e == nil {
		return false
	}
	for _, s := range states {
		i := slices.IndexFunc(e.rcpts, func(r rcpt) bool { return int(r.rid) == s.RID })
		if i < 0 {
			continue
		}
		st := s.RecipientState
		e.rcpts[i].st = &st
	}
	if g != e.seg && !slices.Contains(e.stateSegs, g) {
		e.stateSegs = append(e.stateSegs, g)
		g.stateMids = append(g.stateMids, mid)
		x.pin(g, e)
	}
	return true
}

// applyFinish records a finish record at g. It reports false when the
// message was not live.
func (x *index) applyFinish(g *segment, mid uint64) bool {
	e := x.msgs[mid]
	if e == nil {
		// A finished message: compaction re-emitted its finish record so
		// that the older one's segment can go (or Finish raced itself).
		// The newer record now guards the old copies.
		if t := x.tombs[mid]; t != nil && t.seg != g {
			t.seg.tombPins--
			t.seg = g
			g.tombPins++
			g.tombMids = append(g.tombMids, mid)
		}
		return false
	}
	x.unpinAll(e)
	delete(x.msgs, mid)
	// Only copies older than the finish record need it kept: a copy in g
	// itself goes when g goes.
	n := 0
	for _, c := range e.copies {
		if c.seq < g.seq {
			n++
		}
	}
	if n > 0 {
		x.tombs[mid] = &tomb{seg: g, copies: n}
		g.tombPins++
		g.tombMids = append(g.tombMids, mid)
	}
	return true
}

// dropSegment updates the index for the deletion of g, which must have no
// pins. Tombs whose last copy was in g are released.
func (x *index) dropSegment(g *segment) {
	for _, mid := range g.mids {
		if e := x.msgs[mid]; e != nil {
			if i := slices.Index(e.copies, g); i >= 0 {
				e.copies = slices.Delete(e.copies, i, i+1)
			}
			continue
		}
		if t := x.tombs[mid]; t != nil {
			t.copies--
			if t.copies <= 0 {
				t.seg.tombPins--
				delete(x.tombs, mid)
			}
		}
	}
	if i := slices.Index(x.segs, g); i >= 0 {
		x.segs = slices.Delete(x.segs, i, i+1)
	}
}

func (x *index) current() *segment { return x.segs[len(x.segs)-1] }

// deletable lists the segments that no record in them is needed any more.
func (x *index) deletable() []*segment {
	var out []*segment
	for _, g := range x.segs[:len(x.segs)-1] {
		if g.livePins == 0 && g.tombPins == 0 && !g.removeFail {
			out = append(out, g)
		}
	}
	return out
}

// compactable reports whether emptying g is worth it: its live messages
// are less than half of it, or it only holds finish records that older
// copies need (those are tiny to copy).
func (x *index) compactable(g *segment) bool {
	if g == x.current() || g.cursor >= len(g.mids)+len(g.stateMids)+len(g.tombMids) {
		return false
	}
	if g.livePins > 0 {
		return g.copyCost*2 < g.size
	}
	return g.tombPins > 0
}
