package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAlertsSection(t *testing.T) {
	dir := t.TempDir()
	head := "hostname: mx.example.com\ndata_dir: " + dir + "\n"
	def := Alerts{From: "mailer-daemon@mx.example.com", CheckInterval: 30 * time.Second, RepeatInterval: time.Hour,
		QueueMaxAge: 24 * time.Hour, QueueMaxMessages: 100000, DestinationDown: 30 * time.Minute, DiskFreeBelow: DiskFreeAuto,
		CertificateExpiry: ExpiryWarning, ProbeTimeout: 10 * time.Second}
	with := func(f func(*Alerts)) Alerts { a := def; f(&a); return a }
	for _, tt := range []struct {
		name, yaml string
		want       Alerts
	}{
		{"default", "", def},
		{"empty", "alerts:\n", def},
		{"every key", `alerts: {to: [a@example.com, b@example.net], from: gw@example.com, check_interval: 1s, repeat_interval: 10m,
  queue_max_age: 2h, queue_max_messages: 50, destination_down: 5m, disk_free_below: 1G, certificate_expiry: 720h, probe_timeout: 2s}`,
			Alerts{To: []string{"a@example.com", "b@example.net"}, From: "gw@example.com", CheckInterval: time.Second,
				RepeatInterval: 10 * time.Minute, QueueMaxAge: 2 * time.Hour, QueueMaxMessages: 50, DestinationDown: 5 * time.Minute,
				DiskFreeBelow: 1 << 30, CertificateExpiry: 720 * time.Hour, ProbeTimeout: 2 * time.Second}},
		{"checks off", "alerts: {queue_max_age: 0s, queue_max_messages: 0, disk_free_below: 0, destination_down: 0s}",
			with(func(a *Alerts) { a.QueueMaxAge, a.QueueMaxMessages, a.DiskFreeBelow, a.DestinationDown = 0, 0, 0, 0 })},
		{"disk auto", "alerts: {disk_free_below: auto}", def},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := parseString(t, head+tt.yaml+"\n")
			if !reflect.DeepEqual(c.Alerts, tt.want) {
				t.Errorf("alerts = %+v\nwant     %+v", c.Alerts, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"not an address", "alerts: {to: [admin]}", `test.yaml:3: alerts.to[0]: "admin" is not an address with a domain`},
		{"a display name", `alerts: {from: "Gate <gw@example.com>"}`, `test.yaml:3: alerts.from: "Gate <gw@example.com>" is not an address`},
		{"interval too short", "alerts: {check_interval: 1ms}", "test.yaml:3: alerts.check_interval:"},
		{"no unit", "alerts: {repeat_interval: 60}", "test.yaml:3: alerts.repeat_interval:"},
		{"negative count", "alerts: {queue_max_messages: -1}", "test.yaml:3: alerts.queue_max_messages:"},
		{"bad size", "alerts: {disk_free_below: lots}", "test.yaml:3: alerts.disk_free_below:"},
		{"typo", "alerts: {repeat_intervals: 1h}", `test.yaml:3: alerts.repeat_intervals: unknown key`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, head+tt.yaml+"\n")
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant %q", ps, tt.want)
			}
		})
	}
}
