package outbound

import (
	"cmp"
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/queue"
)

// The read accessors of this file serve the ESA's status, tophosts and
// hoststatus (package stats): the queue's recipients counted as the ESA's
// gauges count them, by destination, and a destination's route and
// addresses. They change nothing. The gauges are read from the spool's
// index, which holds every queued message, not only those the manager has
// in memory: a call walks it (Spool.Walk) and reads no file.

// RecipientGauges counts the recipients not final yet of a set of
// messages, as the ESA's "Active Recipients", "Unattempted Recipients" and
// "Attempted Recipients".
type RecipientGauges struct {
	Active      int       `json:"active_recips"`
	Unattempted int       `json:"unattempted_recips"`
	Attempted   int       `json:"attempted_recips"`
	Oldest      time.Time `json:"oldest,omitzero"` // arrival of the oldest message with one; zero when none
	OldestMID   uint64    `json:"oldest_mid,omitempty"`
}

func (g *RecipientGauges) add(st queue.RecipientState) {
	g.Active++
	if st.Attempts == 0 {
		g.Unattempted++
	} else {
		g.Attempted++
	}
}

// QueueGauges is the whole queue as status shows it.
type QueueGauges struct {
	RecipientGauges
	ConnectionsOut int `json:"conn_out"`        // open or opening
	Destinations   int `json:"dests_in_memory"` // destinations the queue manager holds
}

// QueueGauges reads the gauges of the whole queue, from the spool's index
// in memory.
func (m *Manager) QueueGauges() QueueGauges {
	var g QueueGauges
	m.mu.Lock()
	g.ConnectionsOut, g.Destinations = m.conns, len(m.dests)
	m.mu.Unlock()
	var oldest uint64 // its Seq
	m.o.Spool.Walk(func(lm *queue.LiveMessage) {
		before := g.Active
		for _, r := range lm.Rcpts {
			if r.State.Status == queue.Pending {
				g.add(r.State)
			}
		}
		if g.Active > before && (g.OldestMID == 0 || lm.Seq < oldest) {
			g.Oldest, g.OldestMID, oldest = lm.Received, lm.MID, lm.Seq
		}
	})
	return g
}

// HostGauges is one destination's gauges: tophosts' columns and
// hoststatus' "Gauges:".
type HostGauges struct {
	Name string `json:"name"` // a domain, or the route ("ALL", ".example.com") that serves it
	RecipientGauges
	ConnectionsOut int `json:"conn_out"`         // open or opening
	Pending        int `json:"pending_conn_out"` // opening, not connected yet
}

// Destination is the destination a recipient domain goes by: the name of
// the route that serves it, or the domain itself.
func (m *Manager) Destination(domain string) string {
	return m.destName(strings.ToLower(domain))
}

// HostGauges reads the gauges of every destination with a recipient not
// final or a connection, or of one destination (name, as Destination
// gives it) when name is not "". It reads the spool's index in memory.
func (m *Manager) HostGauges(name string) []HostGauges {
	byName := map[string]*HostGauges{}
	get := func(n string) *HostGauges {
		g := byName[n]
		if g == nil {
			g = &HostGauges{Name: n}
			byName[n] = g
		}
		return g
	}
	m.mu.Lock()
	for n, d := range m.dests {
		if (name == "" || n == name) && (d.conns > 0 || d.rcpts > 0 || len(d.ready) > 0) {
			g := get(n)
			g.ConnectionsOut, g.Pending = d.conns, d.opening
		}
	}
	m.mu.Unlock()
	// Counted by recipient domain while the walk holds the spool's lock,
	// then put under their destinations, whose names come from the
	// routes.
	type count struct {
		RecipientGauges
		seq uint64 // the oldest message's
	}
	byDomain := map[string]*count{}
	m.o.Spool.Walk(func(lm *queue.LiveMessage) {
		for _, r := range lm.Rcpts {
			if r.State.Status != queue.Pending {
				continue
			}
			d := r.Domain
			c := byDomain[d]
			if c == nil {
				c = &count{}
				byDomain[d] = c
			}
			c.add(r.State)
			if c.OldestMID == 0 || lm.Seq < c.seq {
				c.Oldest, c.OldestMID, c.seq = lm.Received, lm.MID, lm.Seq
			}
		}
	})
	oldest := map[string]uint64{} // by destination, the oldest message's Seq
	for d, c := range byDomain {
		n := m.destName(d)
		if name != "" && n != name {
			continue
		}
		g := get(n)
		g.Active += c.Active
		g.Unattempted += c.Unattempted
		g.Attempted += c.Attempted
		if s, ok := oldest[n]; !ok || c.seq < s {
			g.Oldest, g.OldestMID, oldest[n] = c.Oldest, c.OldestMID, c.seq
		}
	}
	out := make([]HostGauges, 0, len(byName))
	for _, g := range byName {
		out = append(out, *g)
	}
	return out
}

// HostRoute is how a destination is reached: hoststatus' "SMTP routes for
// this host" and "Ordered IP addresses".
type HostRoute struct {
	Destination string   `json:"destination"`
	Route       string   `json:"route,omitempty"` // the SMTP route's domain; empty: by MX
	Hosts       []string `json:"hosts"`           // the route's hosts ("host:port") by priority, or the MX hosts in the order tried
	Addresses   []string `json:"addresses"`       // "ip:port", in the order the next connection tries them
	Error       string   `json:"error,omitempty"` // why there is no address to try
}

// HostRoute looks up how mail for a recipient domain goes now: the same
// plan a connection makes (DNS included), in the order the next
// connection would try. Hosts of equal MX preference come in random order,
// as they do for a connection.
func (m *Manager) HostRoute(ctx context.Context, domain string) HostRoute {
	domain = strings.ToLower(domain)
	route := m.routes.lookup(domain)
	hr := HostRoute{Destination: m.destName(domain)}
	if route != nil {
		hr.Route = route.Domain
	}
	hops, err := plan(ctx, m.o.Resolver, route, domain, m.port(), 0)
	if err != nil {
		hr.Error = err.Error()
	}
	if route != nil {
		hosts := slices.Clone(route.Hosts)
		slices.SortStableFunc(hosts, func(a, b config.RouteHost) int { return cmp.Compare(a.Priority, b.Priority) })
		for _, h := range hosts {
			hr.Hosts = append(hr.Hosts, net.JoinHostPort(h.Host, strconv.Itoa(h.Port)))
		}
	}
	for _, h := range hops {
		if route == nil && (len(hr.Hosts) == 0 || hr.Hosts[len(hr.Hosts)-1] != h.host) {
			hr.Hosts = append(hr.Hosts, h.host)
		}
		hr.Addresses = append(hr.Addresses, h.addr())
	}
	return hr
}
