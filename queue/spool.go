package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Recipient is one accepted recipient of a message.
type Recipient struct {
	RID  int
	Addr string
}

// Envelope is what the receiving side knew of a message besides its bytes.
type Envelope struct {
	MID        uint64
	ICID       uint64
	Listener   string
	ClientIP   string
	ClientHost string // verified reverse DNS name, or ""
	Helo       string
	TLS        string // e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256", "" when plaintext
	From       string // "" is the null sender
	Rcpts      []Recipient
	Received   time.Time // the zero time and the Unix epoch are both stored as "unset"
	BodyType   string    // "", "7BIT", "8BITMIME"
	SMTPUTF8   bool
	// Outgoing: the message was relayed (a RELAY sender group), so the
	// outgoing mail policies apply to it, not the incoming ones.
	Outgoing bool
	// Parent is the MID this message was split from (a per-recipient mail
	// policy), 0 for a message received as it is. Its recipients keep the
	// parent's RIDs: they are the parent's recipients that moved here.
	Parent uint64
	// BounceOf, on a DSN the gateway generated, is the MID of the message
	// it reports on, and BounceRIDs are the RIDs of that message's
	// recipients it reports as failed; 0 and nil for any other message.
	// The DSN is committed before the message records those recipients
	// as bounced (or is finished): recovery takes them as bounced while
	// the DSN is live and the message does not say so (Recovery.Bounces),
	// so that a crash between the two writes sends one DSN, not two.
	BounceOf   uint64
	BounceRIDs []int
	// Auth holds the sender-authentication results (SPF, DKIM, DMARC) in
	// package mailauth's encoding (mailauth.Unmarshal), for the stages
	// after the spool; nil when nothing was checked. The spool stores it
	// without reading it.
	Auth []byte
}

// Status is where a recipient stands on the delivery side.
type Status uint8

const (
	Pending   Status = iota // not final yet: never tried, or soft failures so far
	Delivered               // the next hop accepted it
	Bounced                 // hard failure or expiry; the bounce (DSN) is the delivery side's
	Moved                   // split off into another message (Envelope.Parent), which delivers it
)

func (s Status) String() string {
	switch s {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Bounced:
		return "bounced"
	case Moved:
		return "moved"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// RecipientState is the durable delivery state of one recipient. The spool
// stores it and gives it back after a restart; the policy (retry schedule,
// expiry, bounce generation) is the delivery side's.
type RecipientState struct {
	Status   Status
	Attempts int       // delivery attempts made so far
	Last     time.Time // when the last attempt ended
	Next     time.Time // earliest next attempt while Pending; zero means at once
	Reason   string    // last reply or failure text, for the logs and the DSN
}

// Options tune a Spool. The zero value is the production setting.
type Options struct {
	// SegmentSize is the size beyond which the spool starts a new segment
	// file; default 64 MiB. Space is reclaimed a segment at a time.
	SegmentSize int64

	// NoSync skips every fsync. It is for tests and benchmarks only: the
	// data still reaches the kernel before Commit returns, so a killed
	// process loses nothing, but a machine crash or power loss can lose
	// any acknowledged message.
	NoSync bool

	// MinFree is the free-space floor of the spool's file system, in
	// bytes: below it Room and Commit refuse new messages (ErrNoSpace),
	// while the records that free space are still written. 0 means no
	// floor; AutoMinFree means 5 % of the file system, at most 512 MiB.
	MinFree int64

	// Logger receives what the spool cannot return to a caller (a record
	// compaction could not copy, a segment it could not delete). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of the spool.
type Stats struct {
	Messages  int   // live (unfinished) messages
	Pending   int   // their recipients not final yet
	Bytes     int64 // size of all segment files
	LiveBytes int64 // bytes of the live messages' records
	Segments  int

	// Counts since Open.
	Batches   uint64 // group commits written
	Records   uint64 // records written by callers
	Syncs     uint64 // fsyncs of segment data
	Copied    uint64 // message records moved by compaction
	Deleted   uint64 // segment files removed
	Rolled    uint64 // segments ended early, space being tight, for compaction to return their dead space
	Corrupted int    // corrupt regions found by recovery

	// The group commit's shape since Open: records per batch written, and
	// the time of each fsync of segment data (none with NoSync).
	BatchRecords Histogram
	SyncSeconds  Histogram
}

// Recovery describes what Open found.
type Recovery struct {
	Segments  int   // segment files scanned
	Records   int   // whole records replayed
	Messages  int   // live messages after replay
	Truncated int64 // bytes of a torn record cut from the tail of the last segment
	// Corrupt lists the damaged regions that were skipped. Their bytes are
	// saved under corrupt/ in the spool directory; a message whose record
	// was in one is lost, a lost state or finish record means a recipient
	// or message may be delivered twice.
	Corrupt []*CorruptError
	// Splits are the live split children (Envelope.Parent) whose live
	// parent had not recorded their recipients as moved: a crash came
	// between the child's commit and the parent's state record. Recovery
	// takes those recipients of the parent as moved all the same; the work
	// queue makes that durable, and logs the split again, which the crash
	// may have kept from being logged. In commit order.
	Splits []uint64
	// Bounces are the live DSNs (Envelope.BounceOf) whose live message
	// had not recorded the recipients they report as bounced: a crash came
	// between the DSN's commit and the message's own record. Recovery
	// takes those recipients as bounced all the same (Status Bounced, so
	// that they are not tried again, and bounced again); delivery makes
	// that durable, and logs the DSN, which the crash kept from being
	// logged. In commit order.
	Bounces []uint64
}

// CorruptError reports damaged bytes in a segment.
type CorruptError struct {
	Segment string // file path
	Offset  int64
	Length  int64 // bytes skipped
	Err     error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("queue: corrupt data in %s at offset %d (%d bytes): %v", e.Segment, e.Offset, e.Length, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

var (
	ErrClosed   = errors.New("queue: spool closed")
	ErrNotFound = errors.New("queue: no such message")
	// ErrFailed is wrapped by every error after a write or fsync of the
	// spool failed: what reached the disk is then unknown, so the spool
	// accepts nothing more until it is reopened and recovered.
	ErrFailed = errors.New("queue: spool failed")
)

const defaultSegmentSize = 64 << 20

// Spool is the durable message queue: an append-only journal of records in
// segment files. Its methods are safe for concurrent use.
type Spool struct {
	dir      string
	opts     Options
	log      *slog.Logger
	salt     uint32
	dirf     *os.File
	lockf    *os.File
	syncFile func(*os.File) error // fdatasync of a segment; replaced by tests to inject failures

	mu       sync.RWMutex // guards x, inflight, shut; the writer holds it to apply
	x        index
	inflight map[uint64]bool // MIDs being committed
	shut     bool

	seq atomic.Uint64 // commit order

	qmu    sync.Mutex // guards queue, closed, failed, lastArrival, arrivalGap
	queue  []*request
	closed bool
	failed error
	wake   chan struct{}

	// The rate at which records arrive, for the commit delay: the time of
	// the last arrival and a moving average of the gaps between arrivals.
	lastArrival time.Time
	arrivalGap  time.Duration
	done        chan struct{} // closed when the writer has exited

	recovery Recovery
	dsns     map[uint64]dsnRef // recovery's: the DSNs replayed (Envelope.BounceOf); nil after
	space    space

	nBatches, nRecords, nSyncs, nCopied, nDeleted, nEarlyRolls atomic.Uint64
	liveBytes                                                  atomic.Int64
	batchHist, syncHist                                        *hist

	// owned by the writer goroutine
	iov       [][]byte
	batch     []*request
	spare     []*request    // a settled batch's slice, for the next take
	prep      *prepared     // the next segment, made ahead
	syncTime  time.Duration // moving average of one sync of an ordinary batch
	lastBatch int           // records in the last batch: how many a delay waits for
	// compactPause: no compaction before it, after a batch ran out of space.
	compactPause time.Time
}

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

// request is one record on its way to the disk.
type request struct {
	typ    recType
	mid    uint64
	rec    []byte // header and payload, or for a message header and all but the body
	body   []byte
	stage  *Stage // the rest of the body, after body, for a staged message
	seq    uint64
	env    *Envelope
	states []ridState
	work   *Work

	off   int64
	state atomic.Int32
	done  chan error
}

func (r *request) size() int {
	if r.stage != nil {
		return len(r.rec) + len(r.body) + int(r.stage.n)
	}
	return len(r.rec) + len(r.body)
}

// Open opens the spool in dir, creating it if needed, and recovers it: every
// segment is scanned, a torn record at the end of the last one is cut off
// (it was never acknowledged), damaged regions elsewhere are skipped and
// reported in Recovery, and the index of live messages is rebuilt. Only one
// process may have a spool open.
func Open(dir string, o Options) (*Spool, error) {
	if o.SegmentSize <= 0 {
		o.SegmentSize = defaultSegmentSize
	}
	s := &Spool{
		dir:       dir,
		opts:      o,
		log:       o.Logger,
		syncFile:  fdatasync,
		batchHist: newHist(BatchBounds, 1),
		syncHist:  newHist(SyncBounds, 1e-9),
		x:         index{msgs: make(map[uint64]*entry), tombs: make(map[uint64]*tomb)},
		inflight:  make(map[uint64]bool),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	lockf, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	if err := unix.Flock(int(lockf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := lockHolder(lockf)
		lockf.Close()
		return nil, fmt.Errorf("queue: open %s: spool in use by another process%s: %w", dir, holder, err)
	}
	// The holder's PID, for the next one's error. Only the lock counts, so
	// a failure to write it changes nothing but that message.
	if err := lockf.Truncate(0); err == nil {
		_, _ = lockf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.lockf = lockf
	if s.dirf, err = os.Open(dir); err != nil {
		lockf.Close()
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	if err := s.removeStages(); err != nil {
		s.dirf.Close()
		lockf.Close()
		return nil, err
	}
	if err := s.recover(); err != nil {
		s.x.releaseAll()
		s.dirf.Close()
		lockf.Close()
		return nil, err
	}
	s.seq.Store(s.x.maxSeq)
	s.initSpace()
	go s.run()
	return s, nil
}

// Commit stores a message and returns nil only once its record is durable:
// written and fsynced, and the directory fsynced if the record opened a new
// segment. Concurrent Commits share one write and one fsync.
//
// msg is not retained after Commit returns and must not change before.
// When ctx ends while the record is still queued, Commit returns ctx's error
// and nothing is written. Once the writer has taken the record, Commit waits
// for the outcome of that one write and fsync. An error wrapping ErrNoSpace
// is definite: the message is not in the spool and never will be (below
// the floor it was not written; a write that ran out of space was cut off
// and the cut made durable). Any other error (ErrFailed) leaves it unknown
// whether the record reached the disk: a recovered spool may still deliver
// the message, so the sender's retry can cause a duplicate (at-least-once).
func (s *Spool) Commit(ctx context.Context, env *Envelope, msg []byte) error {
	return s.commit(ctx, env, msg, nil)
}

// commit stores a message whose body is msg, followed by st when st is
// not nil.
func (s *Spool) commit(ctx context.Context, env *Envelope, msg []byte, st *Stage) error {
	if err := checkEnvelope(env); err != nil {
		return fmt.Errorf("queue: commit MID %d: %w", env.MID, err)
	}
	seq := s.seq.Add(1)
	rec := make([]byte, recHeaderSize, recHeaderSize+128+len(env.Rcpts)*32)
	rec = appendMessagePrefix(rec, seq, env)
	bodyLen := int64(len(msg))
	if st != nil {
		bodyLen += st.n
	}
	n := int64(len(rec)-recHeaderSize) + bodyLen
	if len(rec)-recHeaderSize > maxEnvelope+32 {
		return fmt.Errorf("queue: commit MID %d: envelope too large", env.MID)
	}
	if n > maxPayload {
		return fmt.Errorf("queue: commit MID %d: message of %d bytes too large", env.MID, bodyLen)
	}
	if err := s.roomFor(int64(recHeaderSize) + n); err != nil {
		return fmt.Errorf("queue: commit MID %d: %w", env.MID, err)
	}
	c := crc(crc(s.salt, rec[recHeaderSize:]), msg)
	if st != nil {
		c = crcConcat(c, st.crc, st.n)
	}
	putRecHeader(rec, s.salt, recMessage, int(n), c)

	mid := env.MID
	s.mu.Lock()
	switch {
	case s.shut:
		s.mu.Unlock()
		return ErrClosed
	// A finished MID is not remembered for ever; the Counters keep MIDs
	// unique, this only catches a caller committing one MID twice.
	case s.x.msgs[mid] != nil || s.inflight[mid] || s.x.tombs[mid] != nil:
		s.mu.Unlock()
		return fmt.Errorf("queue: commit MID %d: MID already used", mid)
	}
	s.inflight[mid] = true
	s.mu.Unlock()

	r := &request{typ: recMessage, mid: mid, rec: rec, body: msg, stage: st, seq: seq, env: env, done: make(chan error, 1)}
	err := s.submit(ctx, r)
	if r.state.Load() == reqCancelled {
		// Never taken by the writer, which otherwise clears inflight.
		s.mu.Lock()
		delete(s.inflight, mid)
		s.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("queue: commit MID %d: %w", mid, err)
	}
	return nil
}

func checkEnvelope(env *Envelope) error {
	if env.MID == 0 {
		return errors.New("MID 0")
	}
	if len(env.Rcpts) == 0 {
		return errors.New("no recipients")
	}
	for i, r := range env.Rcpts {
		if r.RID < 0 || r.RID > math.MaxInt32 {
			return fmt.Errorf("RID %d out of range", r.RID)
		}
		for _, q := range env.Rcpts[:i] {
			if q.RID == r.RID {
				return fmt.Errorf("RID %d twice", r.RID)
			}
		}
	}
	if (env.BounceOf == 0) != (len(env.BounceRIDs) == 0) {
		return errors.New("a DSN names the message it reports on and some of its recipients, or neither")
	}
	for _, rid := range env.BounceRIDs {
		if rid < 0 || rid > math.MaxInt32 {
			return fmt.Errorf("reported RID %d out of range", rid)
		}
	}
	return nil
}

// SetRecipientState durably records st for the recipients rids of a live
// message. Same contract as Commit for ctx and errors.
func (s *Spool) SetRecipientState(ctx context.Context, mid uint64, rids []int, st RecipientState) error {
	if st.Status > Moved || st.Attempts < 0 || st.Attempts > math.MaxInt32 {
		return fmt.Errorf("queue: set state MID %d: invalid state %+v", mid, st)
	}
	if len(rids) == 0 {
		return fmt.Errorf("queue: set state MID %d: no RIDs", mid)
	}
	s.mu.RLock()
	e := s.x.msgs[mid]
	var unknown []int
	if e != nil {
		for _, rid := range rids {
			if !slices.ContainsFunc(e.rcpts, func(r rcpt) bool { return int(r.rid) == rid }) {
				unknown = append(unknown, rid)
			}
		}
	}
	s.mu.RUnlock()
	if e == nil {
		return fmt.Errorf("queue: set state MID %d: %w", mid, ErrNotFound)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("queue: set state MID %d: no RID %v", mid, unknown)
	}
	states := make([]ridState, len(rids))
	for i, rid := range rids {
		states[i] = ridState{RID: rid, RecipientState: st}
	}
	r := &request{typ: recState, mid: mid, states: states, done: make(chan error, 1)}
	r.rec = newRecord(s.salt, recState, appendState(nil, mid, states))
	if err := s.submit(ctx, r); err != nil {
		return fmt.Errorf("queue: set state MID %d: %w", mid, err)
	}
	return nil
}

// Finish durably marks a message done (all its recipients final, or
// deleted): it leaves Messages, and its space is reclaimed once its segment
// holds nothing else live. Same contract as Commit for ctx and errors.
func (s *Spool) Finish(ctx context.Context, mid uint64) error {
	s.mu.RLock()
	e := s.x.msgs[mid]
	s.mu.RUnlock()
	if e == nil {
		return fmt.Errorf("queue: finish MID %d: %w", mid, ErrNotFound)
	}
	r := &request{typ: recFinish, mid: mid, done: make(chan error, 1)}
	r.rec = newRecord(s.salt, recFinish, appendFinish(nil, mid))
	if err := s.submit(ctx, r); err != nil {
		return fmt.Errorf("queue: finish MID %d: %w", mid, err)
	}
	return nil
}

func newRecord(salt uint32, t recType, payload []byte) []byte {
	b := make([]byte, recHeaderSize+len(payload))
	copy(b[recHeaderSize:], payload)
	putRecHeader(b, salt, t, len(payload), crc(salt, payload))
	return b
}

// submit hands r to the writer and waits for its outcome.
func (s *Spool) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		r.state.Store(reqCancelled)
		return err
	}
	s.qmu.Lock()
	if s.closed || s.failed != nil {
		err := cmp.Or(s.failed, ErrClosed)
		s.qmu.Unlock()
		r.state.Store(reqCancelled)
		return err
	}
	s.queue = append(s.queue, r)
	now := time.Now()
	if !s.lastArrival.IsZero() {
		s.arrivalGap += (now.Sub(s.lastArrival) - s.arrivalGap) / 8
	}
	s.lastArrival = now
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return ctx.Err()
		}
		return <-r.done
	}
}

// Read returns the envelope and the bytes of a live message. The record's
// checksums are verified again, so damage since it was written is an error,
// not wrong mail.
func (s *Spool) Read(mid uint64) (*Envelope, []byte, error) {
	g, off, n, err := s.locate(mid)
	if err != nil {
		return nil, nil, err
	}
	defer g.release()
	_, env, body, err := readMessage(g, off, n)
	if err != nil {
		return nil, nil, fmt.Errorf("queue: read MID %d: %w", mid, err)
	}
	return env, body, nil
}

// locate finds a live message's record and holds its segment, which the
// caller releases.
func (s *Spool) locate(mid uint64) (g *segment, off, n int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.shut {
		return nil, 0, 0, ErrClosed
	}
	e := s.x.msgs[mid]
	if e == nil {
		return nil, 0, 0, fmt.Errorf("queue: read MID %d: %w", mid, ErrNotFound)
	}
	e.seg.acquire()
	return e.seg, e.off, e.n, nil
}

// Head returns a live message's envelope, the first max bytes of its body
// (all of it when shorter) and the body's size, reading little more of the
// record than that: the queue manager wants the envelope long before the
// body, and a listing wants only the header. Unlike Read it cannot verify
// the record's checksum, which covers the whole record: the envelope is
// checked for its structure only, and Read, before any delivery, checks
// the rest.
func (s *Spool) Head(mid uint64, max int) (env *Envelope, head []byte, size int64, err error) {
	g, off, n, err := s.locate(mid)
	if err != nil {
		return nil, nil, 0, err
	}
	defer g.release()
	env, head, size, err = readHead(g, off, n, max)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("queue: read MID %d: %w", mid, err)
	}
	return env, head, size, nil
}

// headSlack is what Head reads for the envelope besides the body's first
// bytes: an envelope of a few recipients takes a few hundred bytes.
const headSlack = 4 << 10

func readHead(g *segment, off, n int64, max int) (env *Envelope, head []byte, size int64, err error) {
	want := min(n, recHeaderSize+headSlack+int64(max))
	rec := make([]byte, want)
	if _, err := g.f.ReadAt(rec, off); err != nil {
		return nil, nil, 0, fmt.Errorf("%s offset %d: %w", g.path, off, err)
	}
	h, ok := parseRecHeader(rec, g.salt)
	if !ok || h.typ != recMessage || h.n != n-recHeaderSize {
		return nil, nil, 0, &CorruptError{Segment: g.path, Offset: off, Length: n, Err: errors.New("bad record header")}
	}
	_, env, bodyOff, err := decodeMessage(rec[recHeaderSize:])
	if errors.Is(err, errTruncated) && want < n {
		// An envelope longer than the slack (many recipients): the
		// whole record, checksum and all.
		_, env, body, err := readMessage(g, off, n)
		if err != nil {
			return nil, nil, 0, err
		}
		return env, body[:min(len(body), max)], int64(len(body)), nil
	}
	if err != nil {
		return nil, nil, 0, &CorruptError{Segment: g.path, Offset: off, Length: n, Err: err}
	}
	body := rec[recHeaderSize+bodyOff:]
	return env, body[:min(len(body), max)], n - recHeaderSize - int64(bodyOff), nil
}

// readMessage reads and verifies the message record at g/off of n bytes. It
// returns the whole record, the envelope and the body (a slice of rec).
func readMessage(g *segment, off, n int64) (rec []byte, env *Envelope, body []byte, err error) {
	rec = make([]byte, n)
	if _, err := g.f.ReadAt(rec, off); err != nil {
		return nil, nil, nil, fmt.Errorf("%s offset %d: %w", g.path, off, err)
	}
	env, body, err = checkRecord(g, off, rec, crc)
	if err != nil {
		return nil, nil, nil, err
	}
	return rec, env, body, nil
}

// Messages returns the MIDs of the live messages in commit order.
func (s *Spool) Messages() []uint64 {
	s.mu.RLock()
	type ms struct{ mid, seq uint64 }
	all := make([]ms, 0, len(s.x.msgs))
	for mid, e := range s.x.msgs {
		all = append(all, ms{mid, e.seq})
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b ms) int { return cmp.Compare(a.seq, b.seq) })
	mids := make([]uint64, len(all))
	for i, m := range all {
		mids[i] = m.mid
	}
	return mids
}

// LiveMessage is a live message as the spool's index holds it: what a walk
// of the whole queue needs, without reading the segments.
type LiveMessage struct {
	MID      uint64
	Seq      uint64 // commit order: the smaller was committed first
	Received time.Time
	Rcpts    []LiveRecipient
}

// LiveRecipient is a recipient of a live message.
type LiveRecipient struct {
	RID    int
	Domain string         // of its address, in lower case; "" without an '@'
	State  RecipientState // the zero value: pending, never attempted
}

// Walk calls fn for each live message, in no particular order. It holds
// the index's read lock throughout, which holds up commits: fn must be
// quick and must not call the Spool. The LiveMessage and its Rcpts are
// reused from one call to the next.
func (s *Spool) Walk(fn func(*LiveMessage)) {
	var m LiveMessage
	s.mu.RLock()
	defer s.mu.RUnlock()
	for mid, e := range s.x.msgs {
		m.MID, m.Seq, m.Received = mid, e.seq, fromUnixNano(e.received)
		m.Rcpts = m.Rcpts[:0]
		for _, r := range e.rcpts {
			lr := LiveRecipient{RID: int(r.rid), Domain: r.domain}
			if r.st != nil {
				lr.State = *r.st
			}
			m.Rcpts = append(m.Rcpts, lr)
		}
		fn(&m)
	}
}

// RecipientStates returns the state of every recipient of a live message,
// by RID. Recipients never updated have the zero RecipientState (Pending).
func (s *Spool) RecipientStates(mid uint64) (map[int]RecipientState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.x.msgs[mid]
	if e == nil {
		return nil, fmt.Errorf("queue: recipient states MID %d: %w", mid, ErrNotFound)
	}
	m := make(map[int]RecipientState, len(e.rcpts))
	for _, r := range e.rcpts {
		var st RecipientState
		if r.st != nil {
			st = *r.st
		}
		m[int(r.rid)] = st
	}
	return m, nil
}

// MaxMID returns the highest MID found in the spool or committed since Open.
// The caller keeps its MID counter above it (Counters.Ensure).
func (s *Spool) MaxMID() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.x.maxMID
}

// Recovery returns what Open found.
func (s *Spool) Recovery() Recovery { return s.recovery }

// Stats returns a snapshot of the spool's size and activity.
func (s *Spool) Stats() Stats {
	s.mu.RLock()
	st := Stats{Messages: len(s.x.msgs), Segments: len(s.x.segs)}
	for _, g := range s.x.segs {
		st.Bytes += g.size
	}
	for _, e := range s.x.msgs {
		for _, r := range e.rcpts {
			if r.st == nil || r.st.Status == Pending {
				st.Pending++
			}
		}
	}
	s.mu.RUnlock()
	st.LiveBytes = s.liveBytes.Load()
	st.Batches = s.nBatches.Load()
	st.Records = s.nRecords.Load()
	st.Syncs = s.nSyncs.Load()
	st.Copied = s.nCopied.Load()
	st.Deleted = s.nDeleted.Load()
	st.Rolled = s.nEarlyRolls.Load()
	st.Corrupted = len(s.recovery.Corrupt)
	st.BatchRecords = s.batchHist.snapshot()
	st.SyncSeconds = s.syncHist.snapshot()
	return st
}

// Close waits for the records already submitted, then closes the files.
// It returns the spool's failure, if it had one.
func (s *Spool) Close() error {
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done

	s.mu.Lock()
	s.shut = true
	if s.failure() == nil && len(s.x.segs) > 0 {
		// Leave no zeros ahead for the next Open to look at.
		s.trim(s.x.current())
	}
	s.x.releaseAll()
	s.mu.Unlock()
	errs := []error{s.failure()}
	if err := s.dirf.Close(); err != nil {
		errs = append(errs, fmt.Errorf("queue: close: %w", err))
	}
	// Closing the file drops the flock.
	if err := s.lockf.Close(); err != nil {
		errs = append(errs, fmt.Errorf("queue: close: %w", err))
	}
	return errors.Join(errs...)
}

func (x *index) releaseAll() {
	for _, g := range x.segs {
		g.release()
	}
	x.segs = nil
}

// Err returns the failure that made the spool read-only (wrapping
// ErrFailed), or nil while it writes: a readiness check asks it.
func (s *Spool) Err() error { return s.failure() }

func (s *Spool) failure() error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.failed
}

// fail makes the spool read-only for good. After a failed write or fsync
// the kernel may have dropped the dirty pages and cleared the error (the
// PostgreSQL "fsyncgate" lesson): retrying the fsync could succeed without
// the data being on disk, so nothing written after this is trusted.
func (s *Spool) fail(err error) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		s.log.Error("queue: spool failed, accepting nothing until reopened", "dir", s.dir, "err", err)
	}
	return s.failed
}

// lockHolder names the process that holds the spool's lock, from the PID it
// wrote into the file: " (PID 1234; stop it first, e.g. kill 1234)", or ""
// when the file does not say.
func lockHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (PID %d; stop it first, e.g. kill %d)", pid, pid)
}
