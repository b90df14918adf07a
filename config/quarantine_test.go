package config

import (
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/quarantine"
)

func TestQuarantinesConfig(t *testing.T) {
	c, err := Parse([]byte(`
quarantines:
  - name: Policy
    retention: 2h
  - name: File Analysis
    retention: 1h30m
    on_expiry: release
    max_size: 10MB
  - name: Virus
    max_size: 0
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := quarantine.Defaults()
	want[0].Retention = 2 * time.Hour
	want[1].MaxSize = 0
	want = append(want, quarantine.Spec{Name: "File Analysis", Retention: 90 * time.Minute, OnExpiry: quarantine.ExpireRelease, MaxSize: 10 << 20})
	if len(c.Quarantines) != len(want) {
		t.Fatalf("Quarantines = %+v", c.Quarantines)
	}
	for i := range want {
		if c.Quarantines[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, c.Quarantines[i], want[i])
		}
	}
	// Left out: the defaults.
	c, err = Parse([]byte("hostname: mx.test\n"), "t.yaml")
	if err != nil || len(c.Quarantines) != 4 || c.Quarantines[0].Name != "Policy" {
		t.Errorf("defaults: %v %+v", err, c.Quarantines)
	}
}

func TestQuarantinesProblems(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"quarantines:\n  - name: New\n", `t.yaml:2: quarantines[0].retention: required for a quarantine that is not one of the defaults`},
		{"quarantines:\n  - name: Policy\n    retention: 10\n", `t.yaml:3: quarantines[0].retention: duration 10 has no unit`},
		{"quarantines:\n  - name: Policy\n    retention: 1ms\n", `t.yaml:3: quarantines[0].retention: duration 1ms is below the minimum 1s`},
		{"quarantines:\n  - name: Policy\n    on_expiry: bounce\n", `t.yaml:3: quarantines[0].on_expiry: unknown value "bounce"`},
		{"quarantines:\n  - name: 'a\"b'\n", `t.yaml:2: quarantines[0].name: "a\"b": a name is`},
		{"quarantines:\n  - name: Policy\n  - name: Policy\n", `t.yaml:3: quarantines[1].name: quarantine "Policy" is given twice`},
		{"quarantines:\n  - retention: 1h\n", `t.yaml:2: quarantines[0].name: required`},
		{"quarantines:\n  - name: Policy\n    max_size: lots\n", `t.yaml:3: quarantines[0].max_size:`},
		{"quarantines:\n  - name: Policy\n    retension: 1h\n", `t.yaml:3: quarantines[0].retension: unknown key; did you mean "retention"?`},
	} {
		_, err := Parse([]byte(c.yaml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.yaml, err, c.want)
		}
	}
}
