package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Alerts configures the alerts (package alert): which conditions, their
// thresholds, who gets the mail and how often.
type Alerts struct {
	To   []string // recipients; none: alerts are logged and counted, not mailed
	From string   // the From of the alert mail; default mailer-daemon@<hostname>

	CheckInterval  time.Duration // between two rounds of checks
	RepeatInterval time.Duration // the least time between two alerts of one condition

	QueueMaxAge       time.Duration // the oldest message waited longer; 0: not checked
	QueueMaxMessages  int           // the queue holds more messages; 0: not checked
	DestinationDown   time.Duration // a destination down longer (0: at the first round that sees it)
	DiskFreeBelow     int64         // bytes; DiskFreeAuto: twice the spool's floor; 0: only the floor (Critical)
	CertificateExpiry time.Duration // a served certificate expires within
	ProbeTimeout      time.Duration // a scanner's or the tracking store's answer
}

// Defaults of alerts.
const (
	DefaultAlertCheckInterval  = 30 * time.Second
	DefaultAlertRepeatInterval = time.Hour
	DefaultQueueMaxAge         = 24 * time.Hour
	DefaultQueueMaxMessages    = 100000
	DefaultDestinationDown     = 30 * time.Minute
	DefaultProbeTimeout        = 10 * time.Second
	// DiskFreeAuto, as Alerts.DiskFreeBelow: twice the spool's free-space
	// floor, so that the Warning comes before mail is refused.
	DiskFreeAuto = -1
)

func defaultAlerts(c *Config) Alerts {
	return Alerts{From: "mailer-daemon@" + c.Hostname, CheckInterval: DefaultAlertCheckInterval,
		RepeatInterval: DefaultAlertRepeatInterval, QueueMaxAge: DefaultQueueMaxAge, QueueMaxMessages: DefaultQueueMaxMessages,
		DestinationDown: DefaultDestinationDown, DiskFreeBelow: DiskFreeAuto, CertificateExpiry: ExpiryWarning,
		ProbeTimeout: DefaultProbeTimeout}
}

func (d *decoder) alerts(n *yaml.Node, path string, c *Config) {
	c.Alerts = defaultAlerts(c)
	if !present(n) {
		return
	}
	a := &c.Alerts
	f := d.fields(n, path, "to", "from", "check_interval", "repeat_interval", "queue_max_age", "queue_max_messages",
		"destination_down", "disk_free_below", "certificate_expiry", "probe_timeout")
	if v := f["to"]; present(v) {
		p := join(path, "to")
		for i, it := range d.list(v, p) {
			if s, ok := d.str(it, index(p, i)); ok {
				if err := checkPostmaster(s); err != nil {
					d.errorf(it, index(p, i), "%v", err)
					continue
				}
				a.To = append(a.To, s)
			}
		}
	}
	if v := f["from"]; present(v) {
		if s, ok := d.str(v, join(path, "from")); ok {
			if err := checkPostmaster(s); err != nil {
				d.errorf(v, join(path, "from"), "%v", err)
			}
			a.From = s
		}
	}
	duration := func(key string, least time.Duration, dst *time.Duration) {
		if v := f[key]; present(v) {
			if t, ok := d.duration(v, join(path, key), least); ok {
				*dst = t
			}
		}
	}
	duration("check_interval", 100*time.Millisecond, &a.CheckInterval)
	duration("repeat_interval", 100*time.Millisecond, &a.RepeatInterval)
	duration("queue_max_age", 0, &a.QueueMaxAge)
	duration("destination_down", 0, &a.DestinationDown)
	duration("certificate_expiry", 0, &a.CertificateExpiry)
	duration("probe_timeout", 10*time.Millisecond, &a.ProbeTimeout)
	if v := f["queue_max_messages"]; present(v) {
		if k, ok := d.integer(v, join(path, "queue_max_messages"), 0); ok {
			a.QueueMaxMessages = k
		}
	}
	if v := f["disk_free_below"]; present(v) {
		switch v.Value {
		case "auto":
		case "0":
			a.DiskFreeBelow = 0
		default:
			if s, ok := d.size(v, join(path, "disk_free_below")); ok {
				a.DiskFreeBelow = s
			}
		}
	}
}
