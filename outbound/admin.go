package outbound

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
)

// The operations of this file are the administrator's: the queue as the
// CLI shows it (ESA showrecipients, workqueue, tophosts), and the changes
// the administrator makes to it (delivernow, bouncerecipients,
// deleterecipients). They read the spool, which holds every message, not
// only those in memory.

var (
	// ErrNoMessage is returned for a MID that is not in the queue: never
	// queued, or finished already.
	ErrNoMessage = errors.New("no such message in the queue")
	// ErrBusy is returned when the message is being delivered right now;
	// the operation can be tried again once the attempt has ended.
	ErrBusy = errors.New("the message is being delivered now; try again when the attempt has ended")
	// ErrSuspended is returned by DeliverNow while deliveries are suspended.
	ErrSuspended = errors.New("deliveries are suspended")
)

// WorkQueue is the state of the whole queue.
type WorkQueue struct {
	Suspended  bool      `json:"suspended"`
	Messages   int       `json:"messages"`   // in the spool, not finished
	Recipients int       `json:"recipients"` // of those, not final yet
	Oldest     time.Time `json:"oldest"`     // arrival of the oldest message; zero when the queue is empty
	OldestMID  uint64    `json:"oldest_mid,omitempty"`
	Status
}

// QueuedMessage is one message of the queue.
type QueuedMessage struct {
	MID        uint64            `json:"mid"`
	ICID       uint64            `json:"icid"`
	Received   time.Time         `json:"received"`
	Size       int               `json:"size"`
	From       string            `json:"from"`
	Subject    string            `json:"subject"`
	MessageID  string            `json:"message_id"`
	ClientIP   string            `json:"client_ip,omitempty"`
	ClientHost string            `json:"client_host,omitempty"`
	Listener   string            `json:"listener,omitempty"`
	Recipients []QueuedRecipient `json:"recipients"`
}

// QueuedRecipient is one recipient of a queued message and where it stands.
type QueuedRecipient struct {
	RID         int       `json:"rid"`
	Addr        string    `json:"addr"`
	Destination string    `json:"destination"` // the domain or route it goes by
	Status      string    `json:"status"`      // pending, delivering, delivered, bounced
	Attempts    int       `json:"attempts"`
	Last        time.Time `json:"last,omitzero"`
	Next        time.Time `json:"next,omitzero"` // earliest next attempt of a pending recipient; zero is now
	Reason      string    `json:"reason,omitempty"`
}

// WorkQueue reports the size of the queue and the queue manager's state.
func (m *Manager) WorkQueue() WorkQueue {
	st := m.o.Spool.Stats()
	w := WorkQueue{Messages: st.Messages, Recipients: st.Pending, Status: m.Status()}
	m.mu.Lock()
	w.Suspended = m.state != running
	m.mu.Unlock()
	var oldest uint64 // its Seq
	m.o.Spool.Walk(func(lm *queue.LiveMessage) {
		if w.OldestMID == 0 || lm.Seq < oldest {
			w.Oldest, w.OldestMID, oldest = lm.Received, lm.MID, lm.Seq
		}
	})
	return w
}

// Messages lists the queued messages in the order they arrived, at most
// limit of them (0: all), with the number that matched. With a domain,
// only the messages with a recipient not final for it: its domain, or the
// route that serves it.
func (m *Manager) Messages(domain string, limit int) ([]QueuedMessage, int, error) {
	domain = strings.ToLower(domain)
	var out []QueuedMessage
	total := 0
	for _, mid := range m.o.Spool.Messages() {
		q, err := m.Message(mid)
		if errors.Is(err, ErrNoMessage) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if domain != "" && !slices.ContainsFunc(q.Recipients, func(r QueuedRecipient) bool {
			return (r.Status == "pending" || r.Status == "delivering") && (domainOf(r.Addr) == domain || r.Destination == domain)
		}) {
			continue
		}
		total++
		if limit <= 0 || len(out) < limit {
			out = append(out, q)
		}
	}
	return out, total, nil
}

// Message describes one queued message.
func (m *Manager) Message(mid uint64) (QueuedMessage, error) {
	env, head, size, states, err := m.head(mid, summaryFirst)
	h := rfc822.ReadHeader(head)
	// The header went on past the bytes read when it runs into their last
	// line, which the cut may have left too short to read as a field.
	if err == nil && size > int64(len(head)) && !h.Blank && bytes.IndexByte(head[h.Len:], '\n') < 0 {
		env, head, size, states, err = m.head(mid, summaryMax) // a long header
		h = rfc822.ReadHeader(head)
	}
	if err != nil {
		return QueuedMessage{}, fmt.Errorf("outbound: MID %d: %w", mid, err)
	}
	q := QueuedMessage{MID: mid, ICID: env.ICID, Received: env.Received, Size: int(size), From: env.From,
		ClientIP: env.ClientIP, ClientHost: env.ClientHost, Listener: env.Listener}
	q.Subject, _ = h.Subject()
	q.MessageID = h.MessageID()

	m.mu.Lock()
	delivering := map[int]bool{}
	if msg := m.active[mid]; msg != nil {
		for _, j := range msg.jobs {
			if j.state == jobInflight {
				for _, i := range j.rcpts {
					delivering[i] = true
				}
			}
		}
	}
	m.mu.Unlock()
	for i, r := range env.Rcpts {
		st := states[r.RID]
		qr := QueuedRecipient{RID: r.RID, Addr: r.Addr, Destination: m.destName(domainOf(r.Addr)),
			Status: st.Status.String(), Attempts: st.Attempts, Last: st.Last, Reason: st.Reason}
		if st.Status == queue.Pending {
			qr.Next = st.Next
			if delivering[i] {
				qr.Status = "delivering"
			}
		}
		q.Recipients = append(q.Recipients, qr)
	}
	return q, nil
}

// head returns a queued message from the spool: its envelope, the body's
// first max bytes and its size, and its recipients' states. A message not
// in the spool is ErrNoMessage.
func (m *Manager) head(mid uint64, max int) (env *queue.Envelope, head []byte, size int64, states map[int]queue.RecipientState, err error) {
	env, head, size, err = m.o.Spool.Head(mid, max)
	states, err = m.states(mid, err)
	return env, head, size, states, err
}

// states reads mid's recipient states when err, that of reading the
// message, is nil.
func (m *Manager) states(mid uint64, err error) (map[int]queue.RecipientState, error) {
	var states map[int]queue.RecipientState
	if err == nil {
		states, err = m.o.Spool.RecipientStates(mid)
	}
	if errors.Is(err, queue.ErrNotFound) {
		err = ErrNoMessage
	}
	return states, err
}

// A listing reads the first summaryFirst bytes of a body for its Subject
// and Message-ID, and summaryMax when the header runs to the end of those. A
// header is rarely longer; of one that is, the fields past the cut are not
// shown.
const (
	summaryFirst = 8 << 10
	summaryMax   = 64 << 10
)

// destName is the destination a recipient domain goes by: its route's
// name, or the domain.
func (m *Manager) destName(domain string) string {
	if r := m.routes.lookup(domain); r != nil {
		return r.Domain
	}
	return domain
}

// DeliverNow makes every recipient waiting for a retry due at once, or
// only those of one destination (a recipient domain or a route name), as
// the ESA's delivernow does. It returns how many transactions of messages
// in memory became ready, and how many messages sleeping in the spool
// were taken back in to be looked at (with a domain, some of them may
// have no recipient for it, and go back to sleep).
func (m *Manager) DeliverNow(domain string) (ready, woken int, err error) {
	domain = strings.ToLower(domain)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != running {
		return 0, 0, fmt.Errorf("outbound: deliver now: %w", ErrSuspended)
	}
	keep := m.sched[:0]
	for _, e := range m.sched {
		if j := e.j; j != nil {
			if j.state != jobDeferred || j.msg.gone || j.due.UnixNano() != e.at {
				continue // stale: fire would skip it
			}
			if domain == "" || j.dest.name == domain || jobHasDomain(j, domain) {
				m.makeReady(j)
				ready++
				continue
			}
			keep = append(keep, e)
			continue
		}
		if m.active[e.mid] != nil {
			continue // taken in since; its jobs have timers of their own
		}
		m.forced[e.mid] = domain
		m.waiting.push(e.mid)
		woken++
	}
	clear(m.sched[len(keep):])
	m.sched = keep
	heap.Init(&m.sched)
	m.wakeLoader()
	m.wakeTimer()
	m.schedule()
	return ready, woken, nil
}

func jobHasDomain(j *job, domain string) bool {
	return slices.ContainsFunc(j.rcpts, func(i int) bool { return domainOf(j.msg.env.Rcpts[i].Addr) == domain })
}

// Bounce bounces every recipient of a message that is not final yet, as
// the ESA's bouncerecipients does: "Bounced:" lines with DCID 0 and a DSN
// to the sender, as for a 5xx. It returns how many recipients bounced.
func (m *Manager) Bounce(mid uint64) (int, error) {
	return m.remove(mid, true)
}

// Delete removes every recipient of a message that is not final yet, as
// the ESA's deleterecipients does: "Deleted: MID n to [...]", no DSN. It
// returns how many recipients were removed.
func (m *Manager) Delete(mid uint64) (int, error) {
	return m.remove(mid, false)
}

// adminBounce is the outcome of a recipient bounced by the administrator.
var adminBounce = outcome{result: bounced, status: "5.0.0", code: "000", lines: []string{"Bounced by the administrator"}}

func (m *Manager) remove(mid uint64, bounce bool) (n int, err error) {
	op := "delete"
	if bounce {
		op = "bounce"
	}
	// Take the message out of the manager's hands: out of memory, and held
	// so that neither the loader nor a timer brings it back meanwhile.
	m.mu.Lock()
	if m.held[mid] {
		m.mu.Unlock()
		return 0, fmt.Errorf("outbound: %s MID %d: %w", op, mid, ErrBusy)
	}
	if msg := m.active[mid]; msg != nil {
		if slices.ContainsFunc(msg.jobs, func(j *job) bool { return j.state == jobInflight }) {
			m.mu.Unlock()
			return 0, fmt.Errorf("outbound: %s MID %d: %w", op, mid, ErrBusy)
		}
		m.forget(msg)
		m.schedule()
	}
	m.held[mid] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.held, mid)
		if err != nil && !errors.Is(err, ErrNoMessage) {
			// Still in the spool as it was: back to the queue.
			m.waiting.push(mid)
			m.wakeLoader()
		}
		m.mu.Unlock()
	}()

	env, _, _, states, err := m.head(mid, 0)
	if err != nil {
		return 0, fmt.Errorf("outbound: %s MID %d: %w", op, mid, err)
	}
	msg := &message{env: env, arrived: env.Received, states: make([]queue.RecipientState, len(env.Rcpts)), gone: true}
	if msg.arrived.IsZero() {
		msg.arrived = time.Now()
	}
	// The job is not the manager's: msg.gone keeps finishJob from
	// rescheduling anything, and its counters go to no destination.
	j := &job{msg: msg, dest: &dest{}, state: jobInflight}
	var rids []int
	for i, r := range env.Rcpts {
		msg.states[i] = states[r.RID]
		if msg.states[i].Status == queue.Pending {
			j.rcpts = append(j.rcpts, i)
			rids = append(rids, r.RID)
		}
	}
	msg.pending = len(j.rcpts)
	msg.jobs = []*job{j}
	if len(rids) == 0 {
		return 0, fmt.Errorf("outbound: %s MID %d: %w", op, mid, ErrNoMessage)
	}
	if bounce {
		m.log.Info("outbound: bounced by the administrator", "mid", mid, "rids", rids)
		m.finishJob(j, repeat(adminBounce, len(rids)), 0, try{})
		if _, err := m.o.Spool.RecipientStates(mid); !errors.Is(err, queue.ErrNotFound) {
			// finishJob logged why the spool did not take it.
			return 0, fmt.Errorf("outbound: bounce MID %d: not recorded in the spool", mid)
		}
		return len(rids), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if err := m.o.Spool.Finish(ctx, mid); err != nil {
		return 0, fmt.Errorf("outbound: delete MID %d: %w", mid, err)
	}
	m.log.Info("outbound: deleted by the administrator", "mid", mid, "rids", rids)
	m.emit(event.Deleted{MID: mid, RIDs: rids})
	m.emit(event.MessageFinished{MID: mid, Status: event.FinishedDone})
	return len(rids), nil
}
