package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/syslog"
)

func TestSyslogReceiver(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		addr       string
		allow      []syslog.Sender
	}{
		{"address on loopback", `{syslog: "127.0.0.1:5514"}`, "127.0.0.1:5514", nil},
		{"mapping on loopback", `{syslog: {address: "[::1]:5514"}}`, "[::1]:5514", nil},
		{"allow list beyond loopback", `{syslog: {address: "0.0.0.0:514", allow: [{address: 10.1.1.5, host: esa1.example.com}, 10.1.1.6, {address: "::ffff:10.1.1.7"}]}}`,
			"0.0.0.0:514", []syslog.Sender{{Addr: netip.MustParseAddr("10.1.1.5"), Host: "esa1.example.com"},
				{Addr: netip.MustParseAddr("10.1.1.6")}, {Addr: netip.MustParseAddr("10.1.1.7")}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := parseString(t, "tracking: "+tt.yaml+"\nhttp: {address: \"\"}\n")
			if c.Tracking.Syslog != tt.addr || !reflect.DeepEqual(c.Tracking.SyslogAllow, tt.allow) {
				t.Errorf("syslog %q allow %+v, want %q %+v", c.Tracking.Syslog, c.Tracking.SyslogAllow, tt.addr, tt.allow)
			}
		})
	}
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"all addresses without a list", `{syslog: ":514"}`, `test.yaml:1: tracking.syslog: :514 listens beyond loopback: list the senders allowed in tracking.syslog.allow`},
		{"0.0.0.0 without a list", `{syslog: {address: "0.0.0.0:514"}}`, `test.yaml:1: tracking.syslog.address: 0.0.0.0:514 listens beyond loopback`},
		{"a public address without a list", `{syslog: "192.0.2.1:514"}`, `tracking.syslog: 192.0.2.1:514 listens beyond loopback`},
		{"empty list", `{syslog: {address: "0.0.0.0:514", allow: []}}`, `tracking.syslog.allow: an empty list allows no sender`},
		{"not an address", `{syslog: {address: "0.0.0.0:514", allow: [esa1.example.com]}}`, `tracking.syslog.allow[0]: "esa1.example.com" is not an IP address`},
		{"bad host", `{syslog: {address: "0.0.0.0:514", allow: [{address: 10.0.0.1, host: "a b"}]}}`, `tracking.syslog.allow[0].host:`},
		{"twice", `{syslog: {address: "0.0.0.0:514", allow: [10.0.0.1, {address: 10.0.0.1}]}}`, `tracking.syslog.allow[1].address: 10.0.0.1 is allowed already, in tracking.syslog.allow[0]`},
		{"no address", `{syslog: {allow: [10.0.0.1]}}`, `tracking.syslog.address: required`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, "tracking: "+tt.yaml+"\nhttp: {address: \"\"}\n")
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant %q", ps, tt.want)
			}
		})
	}
}
