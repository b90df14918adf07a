// Package metrics exports the gateway's counters and gauges in
// Prometheus' text format. The counters are fed from the event stream
// (one event.Sink per listener, one for the delivery side, the work queue
// and the quarantines), from the queue manager's attempts, the work
// queue's stage runs and the DNS lists' failures; the gauges are read from
// the gateway's parts when Prometheus scrapes (the queue, the spool's
// group commit, the mail log's failures, the tracking feed, the syslog
// receiver, readiness, the work queue, the quarantines).
//
// Every metric is named mailgate_..., with its unit in the name and _total
// on counters. Label values are bounded: listeners are configured, causes
// and reasons are the gateway's own words, and destinations are capped
// (see Options.Destinations).
//
// Adding a metric: declare it in New (a counter vector on m.reg, or a
// description in the scrape-time collector for a value read from
// elsewhere), feed it from the sink or the source that has the value,
// list it in the README's Operations section, and make a traffic test
// move it: TestEveryMetricMoves fails on a family no test moved.
package metrics

import (
	"net/http"
	"regexp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the metrics.
type Options struct {
	// Destinations are the destination names that always get their own
	// label value: the routes' domains and the delivery.destinations
	// entries. Other destinations (domains delivered by MX) get their own
	// value up to MaxDestinations of them, first come; beyond, "other".
	Destinations []string
	// MaxDestinations caps the label values of destinations not named in
	// Destinations; 0: 50.
	MaxDestinations int
	// The configured names that bound the labels of the mail pipeline's
	// metrics (pipeline.go): the zones of the HATs' dnslist rules, the
	// stages the work queue runs, the content filters among them, the
	// quarantines. A name not listed is counted as "other".
	DNSLists, Stages, ContentFilters, Quarantines []string
}

// OtherDestination is the label value of the destinations beyond the cap.
const OtherDestination = "other"

// Metrics holds the registry and the gateway's counters.
type Metrics struct {
	reg   *prometheus.Registry
	mine  []prometheus.Collector // mailgate's own, for Names
	dests destinations
	src   sources

	// Receiving, by listener.
	connections     *prometheus.CounterVec // listener, cause
	connectionsOpen *prometheus.GaugeVec   // listener
	hatDecisions    *prometheus.CounterVec // listener, action
	messages        *prometheus.CounterVec // listener
	recipients      *prometheus.CounterVec // listener
	receivedBytes   *prometheus.CounterVec // listener
	rejectedRcpts   *prometheus.CounterVec // listener, by
	receivingFailed *prometheus.CounterVec // listener, reason
	aborted         *prometheus.CounterVec // listener, reason
	auth            *prometheus.CounterVec // listener, outcome

	// Delivery, by destination.
	attempts     *prometheus.CounterVec   // destination
	transactions *prometheus.HistogramVec // destination
	delivered    *prometheus.CounterVec   // destination
	deferred     *prometheus.CounterVec   // destination
	bounced      *prometheus.CounterVec   // destination
	dsns         prometheus.Counter
	dropped      *prometheus.CounterVec // reason

	// Authentication, DNS lists, signing, stages, quarantines.
	pipe pipeline
}

// New makes the metrics and registers them, with Go's runtime and the
// process's own collectors.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.dests.init(o.Destinations, o.MaxDestinations)
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.register(v)
		return v
	}
	m.connections = counter("mailgate_connections_total",
		"Inbound SMTP connections ended, by listener and cause (the cause of mailgate's 'ended' line).", "listener", "cause")
	m.connectionsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailgate_connections_open",
		Help: "Inbound SMTP connections open now, by listener."}, []string{"listener"})
	m.register(m.connectionsOpen)
	m.hatDecisions = counter("mailgate_hat_decisions_total",
		"Host Access Table decisions on connecting clients, by listener and action (accept, relay, reject, tcprefuse).", "listener", "action")
	m.messages = counter("mailgate_received_messages_total",
		"Messages received and queued for delivery, by listener.", "listener")
	m.recipients = counter("mailgate_received_recipients_total",
		"Recipients of the messages received, by listener.", "listener")
	m.receivedBytes = counter("mailgate_received_bytes_total",
		"Bytes of the messages received, as the clients sent them, by listener.", "listener")
	m.rejectedRcpts = counter("mailgate_rejected_recipients_total",
		"Recipients refused, by listener and by what refused them (RAT, Injection Control).", "listener", "by")
	m.receivingFailed = counter("mailgate_receiving_failed_total",
		"'Receiving Failed' lines: messages or connections refused, by listener and the ESA's reason.", "listener", "reason")
	m.aborted = counter("mailgate_aborted_messages_total",
		"Messages aborted before their end of data, by listener and the ESA's reason.", "listener", "reason")
	m.auth = counter("mailgate_auth_total",
		"SMTP AUTH outcomes, by listener: succeeded, failed, required (MAIL without AUTH where it is required).", "listener", "outcome")

	m.attempts = counter("mailgate_delivery_attempts_total",
		"Delivery attempts (one message's recipients at one destination: a transaction, or a connection that failed), by destination.", "destination")
	m.transactions = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailgate_delivery_transaction_seconds",
		Help:    "Time of delivery transactions, from MAIL FROM to the last reply, by destination.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}}, []string{"destination"})
	m.register(m.transactions)
	m.delivered = counter("mailgate_delivered_recipients_total",
		"Recipients delivered (the next hop accepted them), by destination.", "destination")
	m.deferred = counter("mailgate_deferred_recipients_total",
		"Recipients that failed softly and wait for a retry (the ESA's soft bounced events), by destination.", "destination")
	m.bounced = counter("mailgate_bounced_recipients_total",
		"Recipients bounced (hard failures and expiries), by destination.", "destination")
	m.dsns = prometheus.NewCounter(prometheus.CounterOpts{Name: "mailgate_generated_bounces_total",
		Help: "Bounce messages (DSNs) generated for bounced recipients."})
	m.register(m.dsns)
	m.dropped = counter("mailgate_dropped_messages_total",
		"Messages dropped without a bounce, by reason (double-bounce: a bounce that bounced; or what dropped it).", "reason")

	m.newPipeline(o, counter)

	m.register(&scrape{m: m})
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register registers one of mailgate's own collectors.
func (m *Metrics) register(c prometheus.Collector) {
	m.reg.MustRegister(c)
	m.mine = append(m.mine, c)
}

// fqName finds the name in a Desc's String (the Desc has no accessor).
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names lists the names of every mailgate_ metric family declared, sorted,
// whether it has a value yet or not: for the test that makes sure each is
// moved by some traffic.
func (m *Metrics) Names() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range m.mine {
			c.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		if sm := fqName.FindStringSubmatch(d.String()); sm != nil {
			names = append(names, sm[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Handler serves the metrics in Prometheus' text format (or OpenMetrics
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Registry is the registry the metrics are in, for tests and for metrics
// of parts outside this package.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// destinations bounds the destination label's values.
type destinations struct {
	mu    sync.Mutex
	named map[string]bool
	max   int
}

func (d *destinations) init(fixed []string, maxOthers int) {
	d.named = make(map[string]bool, len(fixed))
	for _, n := range fixed {
		d.named[n] = true
	}
	d.max = len(fixed) + maxOthers
	if maxOthers <= 0 {
		d.max = len(fixed) + 50
	}
}

// label is name's label value: its own while there is room, else "other".
func (d *destinations) label(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.named[name] {
		return name
	}
	if len(d.named) < d.max && name != OtherDestination {
		d.named[name] = true
		return name
	}
	return OtherDestination
}
