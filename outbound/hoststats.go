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
// addresses. They change nothing. The gauges are read from the spool,
// which holds every queued message, not only those in memory: a call
// costs a walk of the queue, as a listing does.

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

// QueueGauges reads the gauges of the whole queue. Only the recipient
// states are read, from the spool's index in memory; the oldest message's
// envelope is the one file read.
func (m *Manager) QueueGauges() QueueGauges {
	var g QueueGauges
	m.mu.Lock()
	g.ConnectionsOut, g.Destinations = m.conns, len(m.dests)
	m.mu.Unlock()
	for _, mid := range m.o.Spool.Messages() {
		states, err := m.o.Spool.RecipientStates(mid)
		if err != nil {
			continue // finished meanwhile
		}
		before := g.Active
		for _, st := range states {
			if st.Status == queue.Pending {
				g.add(st)
			}
		}
		if g.OldestMID == 0 && g.Active > before {
			// Messages come in commit order: the first with a recipient
			// not final is the oldest.
			if env, _, _, err := m.o.Spool.Head(mid, 0); err == nil {
				g.Oldest, g.OldestMID = env.Received, mid
			}
		}
	}
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
// gives it) when name is not "". It reads each queued message's envelope
// from the spool for its recipients' addresses.
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
	for _, mid := range m.o.Spool.Messages() {
		states, err := m.o.Spool.RecipientStates(mid)
		if err != nil {
			continue
		}
		pending := false
		for _, st := range states {
			pending = pending || st.Status == queue.Pending
		}
		if !pending {
			continue
		}
		env, _, _, err := m.o.Spool.Head(mid, 0)
		if err != nil {
			continue
		}
		for _, r := range env.Rcpts {
			st := states[r.RID]
			if st.Status != queue.Pending {
				continue
			}
			n := m.destName(domainOf(r.Addr))
			if name != "" && n != name {
				continue
			}
			g := get(n)
			g.add(st)
			if g.OldestMID == 0 {
				g.Oldest, g.OldestMID = env.Received, mid
			}
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
