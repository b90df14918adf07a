package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/explain/explaintest"
)

// A message to three recipients over SMTP, split by two mail policies:
// `track` and the API show each MID's whole record (the child with its
// parent's envelope and connection, the parent's moved recipient split off
// to the child, not left queued), `explain` says where each recipient
// went, and each record links the other.
func TestSplitTracking(t *testing.T) {
	hop := startNextHop(t, 0)
	g := stagesGW(t, hop.addr, splitPolicies)
	web := freePort(t)
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.config, []byte(strings.Replace(string(cfg), `http: {address: ""}`, `http: {address: "`+web+`"}`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	stopped := false
	defer func() {
		if !stopped {
			g.signal(syscall.SIGTERM)
			g.wait()
		}
	}()
	body := "From: a@example.org\r\nMessage-ID: <split-1@example.org>\r\nSubject: board pack\r\n\r\nfigures\r\n"
	if err := sendMail(g.addr, "a@example.org", []string{"ceo@example.com", "x@example.net", "cfo@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	l := g.waitLog(`Message finished MID \d+ done(?s:.*)Message finished MID \d+ done`)
	sm := regexp.MustCompile(`MID (\d+) was split creating MID (\d+) due to a per-recipient policy DEFAULT`).FindStringSubmatch(l)
	if sm == nil {
		t.Fatalf("no split line:\n%s", l)
	}
	parent, _ := strconv.ParseUint(sm[1], 10, 64)
	child, _ := strconv.ParseUint(sm[2], 10, 64)
	// The child's envelope follows the split line, as the ESA logs it.
	if !strings.Contains(l, fmt.Sprintf("MID %d ICID 0 From: <a@example.org>", child)) ||
		!strings.Contains(l, fmt.Sprintf("MID %d ICID 0 RID 1 To: <x@example.net>", child)) {
		t.Errorf("the log lacks the child's From and To lines:\n%s", strings.Join(logLines(l, parent, child), "\n"))
	}

	records := map[uint64]tracking.Message{}
	for _, mid := range []uint64{parent, child} {
		wait.Until(t, fmt.Sprintf("MID %d tracked to its end", mid), func() bool {
			ms := trackJSON(t, g, "--mid", fmt.Sprint(mid))
			if len(ms) != 1 || ms[0].Status != tracking.Delivered || ms[0].Finished.IsZero() {
				return false
			}
			records[mid] = ms[0]
			return true
		})
	}
	p, c := records[parent], records[child]
	rcpts := func(m tracking.Message) string {
		var parts []string
		for _, r := range m.Recipients {
			parts = append(parts, fmt.Sprintf("%d %s %s %q", r.RID, r.Address, r.Status, r.Response))
		}
		return strings.Join(parts, "; ")
	}
	wantParent := fmt.Sprintf(`0 ceo@example.com delivered %q; 1 x@example.net split "split off to MID %d (per-recipient policy DEFAULT)"; 2 cfo@example.com delivered %q`,
		p.Recipients[0].Response, child, p.Recipients[2].Response)
	if got := rcpts(p); got != wantParent || p.Recipients[0].Response == "" {
		t.Errorf("MID %d recipients:\n got %s\nwant %s", parent, got, wantParent)
	}
	if got, want := rcpts(c), fmt.Sprintf(`1 x@example.net delivered %q`, c.Recipients[0].Response); got != want || c.Recipients[0].DCID == 0 {
		t.Errorf("MID %d recipients:\n got %s\nwant %s (with its DCID)", child, got, want)
	}
	// The child's envelope is its parent's.
	for _, f := range []struct {
		name     string
		got, par any
	}{
		{"sender", c.Sender, p.Sender}, {"subject", c.Subject, p.Subject}, {"message_id", c.MessageID, p.MessageID},
		{"size", c.Size, p.Size}, {"icid", c.ICID, p.ICID}, {"remote_ip", c.RemoteIP, p.RemoteIP},
		{"remote_host", c.RemoteHost, p.RemoteHost}, {"sender_group", c.SenderGroup, p.SenderGroup},
	} {
		if f.got != f.par || fmt.Sprint(f.got) == "" || fmt.Sprint(f.got) == "0" {
			t.Errorf("MID %d %s = %v, its parent's %v", child, f.name, f.got, f.par)
		}
	}
	if p.Sender != "a@example.org" || p.Subject != "board pack" || p.MessageID != "<split-1@example.org>" || p.RemoteIP != "127.0.0.1" {
		t.Errorf("MID %d envelope: %+v", parent, p)
	}
	// An administrator finds both by the recipient, and by the connection.
	for _, q := range [][]string{{"--recipient", "X@example.net"}, {"--icid", fmt.Sprint(p.ICID)}} {
		var got []uint64
		for _, m := range trackJSON(t, g, q...) {
			got = append(got, m.MID)
		}
		slices.Sort(got)
		if !slices.Equal(got, []uint64{parent, child}) {
			t.Errorf("track %s: MIDs %v, want %d and %d", strings.Join(q, " "), got, parent, child)
		}
	}

	// explain, and the API's record, explanation and links.
	for _, w := range []struct {
		mid  uint64
		link explain.Link
		want []string
	}{
		{parent, explain.Link{MID: child, Relation: explain.RelSplitInto}, []string{
			"Delivered: the next hop accepted 2 recipients.",
			fmt.Sprintf(`<x@example.net> went on as MID %d, split off by the per-recipient policy DEFAULT: the log says "MID %d was split creating MID %d due to a per-recipient policy DEFAULT"; follow MID %d for it.`, child, parent, child, child),
		}},
		{child, explain.Link{MID: parent, Relation: explain.RelSplitFrom}, []string{
			"Delivered: the next hop accepted 1 recipient.",
			"It came from 127.0.0.1",
			fmt.Sprintf(`It was split off MID %d with <x@example.net>, by the per-recipient policy DEFAULT: the log says "MID %d was split creating MID %d due to a per-recipient policy DEFAULT".`, parent, parent, child),
		}},
	} {
		text := mg(t, "explain", "--config", g.config, fmt.Sprint(w.mid))
		for _, s := range w.want {
			if !strings.Contains(text, s) {
				t.Errorf("explain %d lacks %q:\n%s", w.mid, s, text)
			}
		}
		var d struct {
			Message     tracking.Message
			Timeline    []explain.Entry
			Explanation explain.Explanation
			Links       []explain.Link
		}
		cl := http.Client{Timeout: 10 * time.Second}
		res, err := cl.Get(fmt.Sprintf("http://%s/api/messages/mx.test/%d", web, w.mid))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&d)
		res.Body.Close()
		if err != nil {
			t.Fatalf("API MID %d: %v", w.mid, err)
		}
		if got, want := rcpts(d.Message), rcpts(records[w.mid]); got != want || d.Message.Size != records[w.mid].Size || d.Message.ICID != records[w.mid].ICID {
			t.Errorf("API MID %d: recipients %s, size %d, ICID %d; track says %s, %d, %d", w.mid, got, d.Message.Size, d.Message.ICID, want, records[w.mid].Size, records[w.mid].ICID)
		}
		if len(d.Links) != 1 || d.Links[0].MID != w.link.MID || d.Links[0].Relation != w.link.Relation {
			t.Errorf("API MID %d links %+v, want %+v", w.mid, d.Links, w.link)
		}
		if !slices.Equal(d.Explanation.Why, nonEmptyLines(text, d.Explanation)) {
			t.Errorf("API MID %d: explanation %+v is not explain's:\n%s", w.mid, d.Explanation, text)
		}
		explaintest.Check(t, fmt.Sprintf("MID %d", w.mid), d.Explanation, d.Timeline)
	}
	// The status filter knows split.
	if ms := trackJSON(t, g, "--status", "split"); len(ms) != 0 {
		t.Errorf("track --status split: %d messages, want none (each kept a recipient)", len(ms))
	}
	stopped = true
	g.signal(syscall.SIGTERM)
	if err := g.wait(); err != nil {
		t.Fatal(err)
	}

	// The gateway's log imported into another store gives the same
	// records: one code path for events and for lines.
	dir := t.TempDir()
	other := &gw{config: filepath.Join(dir, "mailgate.yaml")}
	if err := os.WriteFile(other.config, []byte("hostname: mx.test\ndata_dir: "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mg(t, "import", "--config", other.config, "--host", "mx.test", filepath.Join(g.dir, "logs/mail_logs/mail_logs.current"))
	for _, mid := range []uint64{parent, child} {
		ms := trackJSON(t, other, "--mid", fmt.Sprint(mid))
		want := records[mid]
		if len(ms) != 1 || rcpts(ms[0]) != rcpts(want) || ms[0].Status != want.Status || ms[0].Sender != want.Sender ||
			ms[0].Subject != want.Subject || ms[0].MessageID != want.MessageID || ms[0].Size != want.Size || ms[0].ICID != want.ICID ||
			ms[0].RemoteIP != want.RemoteIP || ms[0].SenderGroup != want.SenderGroup {
			t.Errorf("MID %d imported from the log: %+v\nin-process: %+v", mid, ms, want)
		}
	}

	// An ESA's split (the public sample's shape: its safelist/blocklist
	// splits every recipient off, the children's RIDs numbered anew),
	// imported: the same complete records and words.
	mg(t, "import", "--config", other.config, "--host", "esa1.example.com", "../../tracking/testdata/fold/split-esa.log")
	esa := map[uint64]tracking.Message{}
	for _, m := range trackJSON(t, other, "--host", "esa1.example.com") {
		esa[m.MID] = m
	}
	for _, w := range []struct {
		mid    uint64
		status tracking.Status
		rcpts  string
	}{
		{24711507, tracking.Split, `0 user25@mycompany.com split "split off to MID 24711529 (SL/BL configuration)"; ` +
			`1 user26@mycompany.com split "split off to MID 24711529 (SL/BL configuration)"; 2 user37@mycompany.com split "split off to MID 24711528 (SL/BL configuration)"`},
		{24711528, tracking.Delivered, `0 user37@mycompany.com delivered ""`},
		{24711529, tracking.Bounced, `0 user25@mycompany.com delivered ""; 1 user26@mycompany.com bounced "Unknown address error: 550 5.1.1 User unknown"`},
	} {
		m := esa[w.mid]
		if m.Status != w.status || rcpts(m) != w.rcpts || m.Sender != "user15@fjvco.com" || m.ICID != 60240302 || m.RemoteIP != "69.67.18.139" || m.Size != 56534 {
			t.Errorf("ESA MID %d: %s %s\n%+v\nwant %s %s", w.mid, m.Status, rcpts(m), m, w.status, w.rcpts)
		}
	}
	if got := trackJSON(t, other, "--host", "esa1.example.com", "--status", "split"); len(got) != 1 || got[0].MID != 24711507 {
		t.Errorf("track --status split: %+v, want MID 24711507", got)
	}
	text := mg(t, "explain", "--config", other.config, "--host", "esa1.example.com", "24711507")
	if want := "Split: the gateway accepted the message and every recipient went on as another message: MID 24711528 (<user37@mycompany.com>) and MID 24711529 (<user25@mycompany.com>, <user26@mycompany.com>)"; !strings.Contains(text, want) {
		t.Errorf("explain 24711507 lacks %q:\n%s", want, text)
	}
}

// nonEmptyLines returns the lines of explain's text that are x's Why
// lines, in order: the CLI prints the same explanation.
func nonEmptyLines(text string, x explain.Explanation) []string {
	var out []string
	for l := range strings.Lines(text) {
		l = strings.TrimSpace(l)
		for _, w := range x.Why {
			if strings.HasSuffix(l, w) {
				out = append(out, w)
				break
			}
		}
	}
	return out
}
