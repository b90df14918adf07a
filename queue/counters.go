package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/mailgate/mailgate/internal/atomicfile"
)

// Kind names one of the ESA's connection and message counters.
type Kind int

const (
	ICID Kind = iota // injection connection
	MID              // message
	DCID             // delivery connection
	numKinds
)

var kindNames = [numKinds]string{ICID: "ICID", MID: "MID", DCID: "DCID"}

func (k Kind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// counterBlock is how many IDs one fsync reserves. After a crash the IDs of
// a kind jump forward by at most this much; at 2,000 messages a second one
// reservation lasts five seconds.
const counterBlock = 10000

const countersHeader = "mailgate counters 1"

// Counters hands out the ICID, MID and DCID numbers. They are monotonic and
// survive restarts, crashes included: the file holds, per kind, a bound
// below which IDs may have been handed out, and no ID at or above it is
// handed out before a higher bound is durable. A clean Close writes the
// exact next IDs, so a clean restart leaves no gap.
//
// The file is text, for the operator:
//
//	mailgate counters 1
//	ICID 20001
//	MID 30001
//	DCID 10001
type Counters struct {
	path string

	mu     sync.Mutex
	next   [numKinds]uint64 // the next ID to hand out
	limit  [numKinds]uint64 // persisted: every ID handed out is below it
	closed bool
}

// OpenCounters reads the counters at path, creating the file if it does not
// exist. A file that exists but does not parse is an error, never a reset:
// starting again at 1 would repeat IDs.
func OpenCounters(path string) (*Counters, error) {
	c := &Counters{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		for k := range c.next {
			c.next[k], c.limit[k] = 1, 1
		}
	case err != nil:
		return nil, fmt.Errorf("queue: open counters: %w", err)
	default:
		if c.limit, err = parseCounters(b); err != nil {
			return nil, fmt.Errorf("queue: open counters %s: %w", path, err)
		}
		c.next = c.limit
	}
	if err := c.persist(c.limit); err != nil {
		return nil, err
	}
	return c, nil
}

func parseCounters(b []byte) ([numKinds]uint64, error) {
	var v [numKinds]uint64
	var seen [numKinds]bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != countersHeader {
		return v, errors.New("not a counters file")
	}
	for sc.Scan() {
		name, num, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return v, fmt.Errorf("bad line %q", sc.Text())
		}
		k := Kind(-1)
		for i, n := range kindNames {
			if n == name {
				k = Kind(i)
			}
		}
		if k < 0 || seen[k] {
			return v, fmt.Errorf("bad line %q", sc.Text())
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || n == 0 {
			return v, fmt.Errorf("bad line %q", sc.Text())
		}
		v[k], seen[k] = n, true
	}
	for k, ok := range seen {
		if !ok {
			return v, fmt.Errorf("no %v line", Kind(k))
		}
	}
	return v, nil
}

// Next returns a new ID of kind k, never 0 and greater than every one
// handed out before, across restarts. Most calls only take a mutex; one in
// counterBlock writes and fsyncs the file. An error means the reservation
// could not be made durable; no ID is handed out then.
func (c *Counters) Next(k Kind) (uint64, error) {
	if k < 0 || k >= numKinds {
		return 0, fmt.Errorf("queue: counter %v: no such kind", k)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, fmt.Errorf("queue: counter %v: %w", k, ErrClosed)
	}
	if c.next[k] >= c.limit[k] {
		lim := c.limit
		lim[k] = c.next[k] + counterBlock
		if err := c.persist(lim); err != nil {
			return 0, err
		}
		c.limit = lim
	}
	id := c.next[k]
	c.next[k]++
	return id, nil
}

// Ensure makes every later Next(k) return more than floor, e.g. the highest
// MID found in the spool (Spool.MaxMID).
func (c *Counters) Ensure(k Kind, floor uint64) error {
	if k < 0 || k >= numKinds {
		return fmt.Errorf("queue: counter %v: no such kind", k)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("queue: counter %v: %w", k, ErrClosed)
	}
	// Next persists a new bound before it hands out anything at or above
	// the old one, so raising next is all that is needed.
	c.next[k] = max(c.next[k], floor+1)
	return nil
}

// Close records the exact next IDs, so that a clean restart continues
// without a gap.
func (c *Counters) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	return c.persist(c.next)
}

// persist replaces the file with lim durably (atomicfile): a crash
// leaves the old file or the new one, never a mix.
func (c *Counters) persist(lim [numKinds]uint64) error {
	var b bytes.Buffer
	b.WriteString(countersHeader + "\n")
	for k, n := range lim {
		fmt.Fprintf(&b, "%s %d\n", Kind(k), n)
	}
	if err := atomicfile.WriteFile(c.path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("queue: save counters %s: %w", c.path, err)
	}
	return nil
}

// Current returns the last ID of kind k handed out (0 before the first),
// for the ESA's "Current IDs" of status.
func (c *Counters) Current(k Kind) uint64 {
	if k < 0 || k >= numKinds {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next[k] - 1
}
