package stats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/queue"
)

// Status is what status (and status detail) shows; its JSON follows the
// names of the ESA's XML status.
type Status struct {
	AsOf      time.Time    `json:"timestamp"`
	UpSince   time.Time    `json:"birth_time"`
	LastReset time.Time    `json:"last_counter_reset,omitzero"` // zero: never
	System    string       `json:"system_status"`               // "Online"
	Oldest    *Oldest      `json:"oldest_message,omitempty"`
	Counters  []CounterRow `json:"counters"`
	IDs       CurrentIDs   `json:"current_ids"`
	Rates     []RateRow    `json:"rates,omitempty"` // status detail only
	Gauges    Gauges       `json:"gauges"`
	// SaveError is why the lifetime counters could not be saved last time.
	SaveError string `json:"save_error,omitempty"`
}

// Oldest is the oldest message in the queue.
type Oldest struct {
	MID      uint64    `json:"mid"`
	Received time.Time `json:"received"`
}

// CounterRow is one counter in its three columns.
type CounterRow struct {
	Name     string `json:"name"`
	Reset    uint64 `json:"reset"`
	Uptime   uint64 `json:"uptime"`
	Lifetime uint64 `json:"lifetime"`
}

// CurrentIDs are the last MID, ICID and DCID handed out.
type CurrentIDs struct {
	MID  uint64 `json:"message_id"`
	ICID uint64 `json:"injection_conn_id"`
	DCID uint64 `json:"delivery_conn_id"`
}

// RateRow is one counter's rates, in events per hour.
type RateRow struct {
	Name   string `json:"name"`
	Last1  uint64 `json:"last_1_min"`
	Last5  uint64 `json:"last_5_min"`
	Last15 uint64 `json:"last_15_min"`
}

// Gauges are read at the time of the call.
type Gauges struct {
	ConnIn         int    `json:"conn_in"`
	ConnOut        int    `json:"conn_out"`
	Active         int    `json:"active_recips"`
	Unattempted    int    `json:"unattempted_recips"`
	Attempted      int    `json:"attempted_recips"`
	WorkQueue      int    `json:"msgs_in_work_queue"`
	Destinations   int    `json:"dests_in_memory"`
	KilobytesUsed  int64  `json:"kbytes_used"`
	KilobytesFree  *int64 `json:"kbytes_free,omitempty"` // nil: not known on this system
	QueueMessages  int    `json:"queue_messages"`
	QueueKilobytes int64  `json:"queue_kbytes_on_disk"`
}

// Status reads the counters and the gauges; with detail, the rates too.
func (c *Collector) Status(detail bool) Status {
	now := time.Now()
	c.mu.Lock()
	s := Status{AsOf: now, UpSince: c.started, LastReset: c.resetAt, System: "Online"}
	s.Gauges.ConnIn = len(c.icids)
	for k := range numCounters {
		s.Counters = append(s.Counters, CounterRow{Name: k.String(), Reset: c.up[k] - c.atReset[k],
			Uptime: c.up[k], Lifetime: c.lifeBase[k] + c.up[k]})
	}
	if detail {
		for i, k := range rated {
			s.Rates = append(s.Rates, RateRow{Name: k.String(), Last1: c.rates.perHour(now, i, 60),
				Last5: c.rates.perHour(now, i, 300), Last15: c.rates.perHour(now, i, 900)})
		}
	}
	q := c.q
	if c.lastSave != nil {
		s.SaveError = c.lastSave.Error()
	}
	c.mu.Unlock()
	if q != nil {
		g := q.QueueGauges()
		s.Gauges.ConnOut, s.Gauges.Destinations = g.ConnectionsOut, g.Destinations
		s.Gauges.Active, s.Gauges.Unattempted, s.Gauges.Attempted = g.Active, g.Unattempted, g.Attempted
		if g.OldestMID != 0 {
			s.Oldest = &Oldest{MID: g.OldestMID, Received: g.Oldest}
		}
	}
	if c.o.WorkQueue != nil {
		s.Gauges.WorkQueue = c.o.WorkQueue()
	}
	if sp := c.o.Spool; sp != nil {
		st := sp.Stats()
		s.Gauges.KilobytesUsed = st.LiveBytes / 1024
		s.Gauges.QueueMessages, s.Gauges.QueueKilobytes = st.Messages, st.Bytes/1024
		if free, ok := sp.FreeSpace(); ok {
			kb := free / 1024
			s.Gauges.KilobytesFree = &kb
		}
	}
	if ids := c.o.IDs; ids != nil {
		s.IDs = CurrentIDs{MID: ids.Current(queue.MID), ICID: ids.Current(queue.ICID), DCID: ids.Current(queue.DCID)}
	}
	return s
}

// Counter returns the row of counter k.
func (s Status) Counter(k Counter) CounterRow {
	for _, r := range s.Counters {
		if r.Name == k.String() {
			return r
		}
	}
	return CounterRow{Name: k.String()}
}

// Host is one destination as tophosts and hoststatus show it. Its
// counters are since the last resetcounters (or start).
type Host struct {
	Name         string              `json:"name"`
	Down         bool                `json:"down"`
	LastActivity time.Time           `json:"last_activity,omitzero"`
	Counters     map[string]uint64   `json:"counters"`
	Gauges       outbound.HostGauges `json:"gauges"`
}

// Get returns the count of k.
func (h Host) Get(k Counter) uint64 { return h.Counters[k.String()] }

// hostCounters are the counters a destination has.
var hostCounters = [...]Counter{SoftBouncedEvts, CompletedRecips, HardBouncedRecips, DNSHardBounces,
	HardBounces5XX, ExpiredHardBounces, OtherHardBounces, DeliveredRecips}

// Sort keys of tophosts, as the ESA's prompt offers them.
const (
	SortActive    = "active"
	SortConnOut   = "conn_out"
	SortDelivered = "delivered"
	SortSoft      = "soft"
	SortHard      = "hard"
)

// SortKeys are the sort keys of TopHosts.
var SortKeys = []string{SortActive, SortConnOut, SortDelivered, SortSoft, SortHard}

func (h Host) sortValue(key string) uint64 {
	switch key {
	case SortConnOut:
		return uint64(h.Gauges.ConnectionsOut)
	case SortDelivered:
		return h.Get(DeliveredRecips)
	case SortSoft:
		return h.Get(SoftBouncedEvts)
	case SortHard:
		return h.Get(HardBouncedRecips)
	}
	return uint64(h.Gauges.Active)
}

// ErrNoQueue is returned while the queue manager is not attached.
var ErrNoQueue = errors.New("stats: no queue manager")

// ErrUnknownSort is returned for a sort key TopHosts does not know.
var ErrUnknownSort = errors.New("stats: unknown sort key")

// AnyDown reports whether a destination is down now. It reads only what
// the Collector holds, where TopHosts walks the queue: a check that runs
// every few seconds asks this first.
func (c *Collector) AnyDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hosts {
		if h.down {
			return true
		}
	}
	return false
}

// TopHosts lists the destinations with queued recipients, connections or
// counts since the last reset, sorted by key (descending, then by name),
// at most limit (0: all).
func (c *Collector) TopHosts(key string, limit int) ([]Host, error) {
	if key == "" {
		key = SortActive
	}
	if !slices.Contains(SortKeys, key) {
		return nil, fmt.Errorf("%w %q (one of %s)", ErrUnknownSort, key, strings.Join(SortKeys, ", "))
	}
	c.mu.Lock()
	q := c.q
	c.mu.Unlock()
	if q == nil {
		return nil, ErrNoQueue
	}
	gauges := q.HostGauges("")
	c.mu.Lock()
	byName := map[string]*Host{}
	for name, h := range c.hosts {
		hh := c.hostView(name, h)
		byName[name] = &hh
	}
	c.mu.Unlock()
	for _, g := range gauges {
		h := byName[g.Name]
		if h == nil {
			h = &Host{Name: g.Name, Counters: zeroHostCounters()}
			byName[g.Name] = h
		}
		h.Gauges = g
	}
	out := make([]Host, 0, len(byName))
	for _, h := range byName {
		if h.Gauges.Active == 0 && h.Gauges.ConnectionsOut == 0 && h.Get(CompletedRecips) == 0 && h.Get(SoftBouncedEvts) == 0 {
			continue // nothing since the reset
		}
		h.Gauges.Name = h.Name
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b Host) int {
		if r := cmp.Compare(b.sortValue(key), a.sortValue(key)); r != 0 {
			return r
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func zeroHostCounters() map[string]uint64 {
	m := map[string]uint64{}
	for _, k := range hostCounters {
		m[k.String()] = 0
	}
	return m
}

// hostView is a destination's counters since the reset; c.mu is held.
func (c *Collector) hostView(name string, h *host) Host {
	v := Host{Name: name, Down: h.down, LastActivity: h.last, Counters: zeroHostCounters()}
	for _, k := range hostCounters {
		v.Counters[k.String()] = h.n[k] - h.atReset[k]
	}
	return v
}

// HostStatus is what hoststatus shows of one destination.
type HostStatus struct {
	Domain string             `json:"domain"`
	AsOf   time.Time          `json:"timestamp"`
	Host   Host               `json:"host"`
	Route  outbound.HostRoute `json:"route"`
}

// ErrNoHost is the ESA's "No record of host": the gateway has neither
// queued recipients nor counters for the domain's destination.
var ErrNoHost = errors.New("no record of host")

// HostStatus reads one recipient domain's destination: its counters since
// the reset, its gauges, and its route and addresses as a connection
// would plan them now (DNS included, within ctx).
func (c *Collector) HostStatus(ctx context.Context, domain string) (HostStatus, error) {
	c.mu.Lock()
	q := c.q
	c.mu.Unlock()
	if q == nil {
		return HostStatus{}, ErrNoQueue
	}
	domain = strings.ToLower(domain)
	name := q.Destination(domain)
	gauges := q.HostGauges(name)
	c.mu.Lock()
	h, known := c.hosts[name]
	var v Host
	if known {
		v = c.hostView(name, h)
	} else {
		v = Host{Name: name, Counters: zeroHostCounters()}
	}
	c.mu.Unlock()
	if len(gauges) > 0 {
		v.Gauges = gauges[0]
	}
	v.Gauges.Name = name
	if !known && len(gauges) == 0 {
		return HostStatus{}, fmt.Errorf("%w: %s", ErrNoHost, domain)
	}
	return HostStatus{Domain: domain, AsOf: time.Now(), Host: v, Route: q.HostRoute(ctx, domain)}, nil
}
