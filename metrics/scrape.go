package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/queue"
)

// Sources are the parts whose state is read at each scrape. Each may be
// nil: its metrics are then left out (a part not configured, or not
// started yet).
type Sources struct {
	Spool    *queue.Spool
	Delivery *outbound.Manager
	MailLog  *maillog.Writer
	// Tracking is the feed of the tracking store (nil: tracking off).
	Tracking interface {
		Dropped() int64
		Lost() int64
		Lag(now time.Time) time.Duration
	}
	// SyslogDropped counts the messages the syslog receiver dropped (from
	// senders not allowed); nil: no receiver.
	SyslogDropped func() uint64
	// Problems says what keeps the gateway from being ready (health.Checker).
	Problems func() []string
	// Alerts are the alerts raised, by class and severity (package alert).
	Alerts func() []AlertCount
}

// AlertCount is the number of alerts raised of one class and severity.
type AlertCount struct {
	Class, Severity string
	N               uint64
}

type sources struct {
	mu sync.Mutex
	s  Sources
}

// Watch sets the parts read at scrape time; fields left nil keep what an
// earlier call set.
func (m *Metrics) Watch(s Sources) {
	m.src.mu.Lock()
	defer m.src.mu.Unlock()
	cur := &m.src.s
	if s.Spool != nil {
		cur.Spool = s.Spool
	}
	if s.Delivery != nil {
		cur.Delivery = s.Delivery
	}
	if s.MailLog != nil {
		cur.MailLog = s.MailLog
	}
	if s.Tracking != nil {
		cur.Tracking = s.Tracking
	}
	if s.SyslogDropped != nil {
		cur.SyslogDropped = s.SyslogDropped
	}
	if s.Problems != nil {
		cur.Problems = s.Problems
	}
	if s.Alerts != nil {
		cur.Alerts = s.Alerts
	}
}

func (m *Metrics) sources() Sources {
	m.src.mu.Lock()
	defer m.src.mu.Unlock()
	return m.src.s
}

func desc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

// The values read at scrape time.
var (
	queueMessages   = desc("mailgate_queue_messages", "Messages in the spool not finished yet (the work queue).")
	queueRcpts      = desc("mailgate_queue_recipients", "Recipients of those messages not final yet.")
	queueOldest     = desc("mailgate_queue_oldest_message_age_seconds", "Age of the oldest message in the queue; 0 when it is empty.")
	spoolBytes      = desc("mailgate_spool_bytes", "Size of the spool's segment files.")
	activeMessages  = desc("mailgate_delivery_active_messages", "Messages the queue manager holds in memory.")
	waitingMessages = desc("mailgate_delivery_waiting_messages", "Messages due now that wait in the spool for room in memory.")
	outConns        = desc("mailgate_delivery_connections", "Delivery connections open or opening.")
	batchRecords    = desc("mailgate_spool_commit_batch_records", "Records per group commit of the spool (one fsync each).")
	syncSeconds     = desc("mailgate_spool_fsync_seconds", "Time of each fsync of the spool's data.")
	logErrors       = desc("mailgate_mail_log_write_errors_total", "Writes of the mail log that failed (a full disk, an I/O error).")
	logLost         = desc("mailgate_mail_log_lost_lines_total", "Mail log lines lost in failed writes.")
	logDropped      = desc("mailgate_mail_log_dropped_lines_total", "Mail log lines dropped because the writer's buffer was full (the file not being written).")
	trackDropped    = desc("mailgate_tracking_dropped_entries_total", "Log entries the tracking feed's buffer could not take (read back from the mail log later).")
	trackLost       = desc("mailgate_tracking_lost_gaps_total", "Stretches of the mail log rolled away before tracking read them back: records lost.")
	trackLag        = desc("mailgate_tracking_lag_seconds", "Age of the oldest log entry not yet in the tracking store; 0 when it holds everything.")
	syslogDropped   = desc("mailgate_syslog_dropped_messages_total", "Messages the syslog receiver dropped (from senders not allowed).")
	ready           = desc("mailgate_ready", "1 when the gateway is ready to take mail (as /readyz says), else 0.")
	alerts          = prometheus.NewDesc("mailgate_alerts_total",
		"Alerts raised, by the ESA's class (System, Hardware, Anti-Virus, Anti-Spam) and severity (Critical, Warning, Information), mailed or not.",
		[]string{"class", "severity"}, nil)
)

// scrape reads the Sources when Prometheus asks.
type scrape struct{ m *Metrics }

func (c *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueMessages, queueRcpts, queueOldest, spoolBytes, activeMessages, waitingMessages,
		outConns, batchRecords, syncSeconds, logErrors, logLost, logDropped, trackDropped, trackLost, trackLag, syslogDropped, ready, alerts} {
		ch <- d
	}
}

func (c *scrape) Collect(ch chan<- prometheus.Metric) {
	s := c.m.sources()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	now := time.Now()
	if s.Delivery != nil {
		// WorkQueue reads the spool's counts too.
		w := s.Delivery.WorkQueue()
		gauge(queueMessages, float64(w.Messages))
		gauge(queueRcpts, float64(w.Recipients))
		age := 0.0
		if !w.Oldest.IsZero() {
			age = max(now.Sub(w.Oldest).Seconds(), 0)
		}
		gauge(queueOldest, age)
		gauge(activeMessages, float64(w.Active))
		gauge(waitingMessages, float64(w.Waiting))
		gauge(outConns, float64(w.Connections))
	}
	if s.Spool != nil {
		st := s.Spool.Stats()
		if s.Delivery == nil {
			gauge(queueMessages, float64(st.Messages))
			gauge(queueRcpts, float64(st.Pending))
		}
		gauge(spoolBytes, float64(st.Bytes))
		ch <- constHistogram(batchRecords, st.BatchRecords)
		ch <- constHistogram(syncSeconds, st.SyncSeconds)
	}
	if s.MailLog != nil {
		st := s.MailLog.Stats()
		counter(logErrors, float64(st.WriteErrors))
		counter(logLost, float64(st.LostLines))
		counter(logDropped, float64(st.Dropped))
	}
	if s.Tracking != nil {
		counter(trackDropped, float64(s.Tracking.Dropped()))
		counter(trackLost, float64(s.Tracking.Lost()))
		gauge(trackLag, s.Tracking.Lag(now).Seconds())
	}
	if s.SyslogDropped != nil {
		counter(syslogDropped, float64(s.SyslogDropped()))
	}
	if s.Problems != nil {
		v := 1.0
		if len(s.Problems()) > 0 {
			v = 0
		}
		gauge(ready, v)
	}
	if s.Alerts != nil {
		for _, a := range s.Alerts() {
			ch <- prometheus.MustNewConstMetric(alerts, prometheus.CounterValue, float64(a.N), a.Class, a.Severity)
		}
	}
}

// constHistogram turns the spool's histogram (counts per bucket) into
// Prometheus' (cumulative counts per upper bound).
func constHistogram(d *prometheus.Desc, h queue.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}
