package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// splitLog is an ESA's split by its safelist/blocklist (the shape of the
// public sample's MID 24611507, renumbered) as a syslog server may
// interleave it: the first child's lines before its split line, the
// parent's subject after it; then mailgate's split by a mail policy, the
// child keeping its parent's RIDs; then the same as mailgate logged it
// before the child's From and To lines, whose delivery lines alone name
// its recipients, by the parent's RIDs, after the parent is done.
const splitLog = `Wed Nov 19 09:16:40 2014 Info: New SMTP ICID 700 interface Data 1 (10.0.0.1) address 69.67.18.139 reverse dns host mail.fjvco.com verified yes
Wed Nov 19 09:16:40 2014 Info: ICID 700 ACCEPT SG UNKNOWNLIST match sbrs[-0.5:10.0] SBRS 5.1
Wed Nov 19 09:16:41 2014 Info: Start MID 701 ICID 700
Wed Nov 19 09:16:41 2014 Info: MID 701 ICID 700 From: <user15@fjvco.com>
Wed Nov 19 09:16:41 2014 Info: MID 701 ICID 700 RID 0 To: <user25@mycompany.com>
Wed Nov 19 09:16:41 2014 Info: MID 701 ICID 700 RID 1 To: <user26@mycompany.com>
Wed Nov 19 09:16:41 2014 Info: MID 701 ICID 700 RID 2 To: <user37@mycompany.com>
Wed Nov 19 09:16:42 2014 Info: MID 701 Message-ID '<701@fjvco.com>'
Wed Nov 19 09:16:43 2014 Info: MID 702 ICID 0 From: <user15@fjvco.com>
Wed Nov 19 09:16:43 2014 Info: MID 702 ICID 0 RID 0 To: <user37@mycompany.com>
Wed Nov 19 09:16:42 2014 Info: MID 701 ready 56534 bytes from <user15@fjvco.com>
Wed Nov 19 09:16:42 2014 Info: ICID 700 close
Wed Nov 19 09:16:43 2014 Info: MID 701 was split creating MID 702 due to a SL/BL configuration for following recipients: user37@mycompany.com
Wed Nov 19 09:16:42 2014 Info: MID 701 Subject 'Problem report'
Wed Nov 19 09:16:43 2014 Info: MID 701 was split creating MID 703 due to a SL/BL configuration for following recipients: user25@mycompany.com, user26@mycompany.com
Wed Nov 19 09:16:43 2014 Info: MID 703 ICID 0 From: <user15@fjvco.com>
Wed Nov 19 09:16:43 2014 Info: MID 703 ICID 0 RID 0 To: <user25@mycompany.com>
Wed Nov 19 09:16:43 2014 Info: MID 703 ICID 0 RID 1 To: <user26@mycompany.com>
Wed Nov 19 09:16:43 2014 Info: Message finished MID 701 done
Wed Nov 19 09:16:45 2014 Info: MID 702 queued for delivery
Wed Nov 19 09:16:45 2014 Info: MID 703 queued for delivery
Wed Nov 19 09:16:46 2014 Info: Delivery start DCID 710 MID 702 to RID [0]
Wed Nov 19 09:16:46 2014 Info: Message done DCID 710 MID 702 to RID [0]
Wed Nov 19 09:16:46 2014 Info: Message finished MID 702 done
Wed Nov 19 09:16:46 2014 Info: Delivery start DCID 711 MID 703 to RID [0, 1]
Wed Nov 19 09:16:46 2014 Info: Message done DCID 711 MID 703 to RID [0, 1]
Wed Nov 19 09:16:46 2014 Info: Message finished MID 703 done
Wed Nov 19 09:17:00 2014 Info: Start MID 721 ICID 720
Wed Nov 19 09:17:00 2014 Info: MID 721 ICID 720 From: <alice@example.com>
Wed Nov 19 09:17:00 2014 Info: MID 721 ICID 720 RID 0 To: <ceo@example.com>
Wed Nov 19 09:17:00 2014 Info: MID 721 ICID 720 RID 1 To: <x@example.net>
Wed Nov 19 09:17:00 2014 Info: MID 721 ICID 720 RID 2 To: <cfo@example.com>
Wed Nov 19 09:17:00 2014 Info: MID 721 ready 4096 bytes from <alice@example.com>
Wed Nov 19 09:17:00 2014 Info: MID 721 was split creating MID 722 due to a per-recipient policy DEFAULT
Wed Nov 19 09:17:00 2014 Info: MID 722 ICID 0 From: <alice@example.com>
Wed Nov 19 09:17:00 2014 Info: MID 722 ICID 0 RID 1 To: <x@example.net>
Wed Nov 19 09:17:00 2014 Info: MID 721 queued for delivery
Wed Nov 19 09:17:00 2014 Info: MID 722 queued for delivery
Wed Nov 19 09:17:01 2014 Info: Delivery start DCID 730 MID 721 to RID [0, 2]
Wed Nov 19 09:17:01 2014 Info: Message done DCID 730 MID 721 to RID [0, 2]
Wed Nov 19 09:17:01 2014 Info: Message finished MID 721 done
Wed Nov 19 09:17:02 2014 Info: Delivery start DCID 730 MID 722 to RID [1]
Wed Nov 19 09:17:03 2014 Info: Bounced: DCID 730 MID 722 to RID 1 - 5.1.0 - Unknown address error ('550', ['5.1.1 User unknown'])
Wed Nov 19 09:17:03 2014 Info: Message finished MID 722 done
Wed Nov 19 09:18:00 2014 Info: Start MID 731 ICID 730
Wed Nov 19 09:18:00 2014 Info: MID 731 ICID 730 From: <bob@example.com>
Wed Nov 19 09:18:00 2014 Info: MID 731 ICID 730 RID 0 To: <a@example.com>
Wed Nov 19 09:18:00 2014 Info: MID 731 ICID 730 RID 1 To: <b@example.net>
Wed Nov 19 09:18:00 2014 Info: MID 731 ready 100 bytes from <bob@example.com>
Wed Nov 19 09:18:00 2014 Info: MID 731 was split creating MID 732 due to a per-recipient policy DEFAULT
Wed Nov 19 09:18:00 2014 Info: MID 731 queued for delivery
Wed Nov 19 09:18:01 2014 Info: Delivery start DCID 740 MID 731 to RID [0]
Wed Nov 19 09:18:01 2014 Info: Message done DCID 740 MID 731 to RID [0]
Wed Nov 19 09:18:01 2014 Info: Message finished MID 731 done
Wed Nov 19 09:18:01 2014 Info: DCID 740 close
Wed Nov 19 09:18:02 2014 Info: MID 732 queued for delivery
Wed Nov 19 09:18:02 2014 Info: New SMTP DCID 741 interface 10.0.0.1 address 10.0.0.25 port 25
Wed Nov 19 09:18:03 2014 Info: Delivery start DCID 741 MID 732 to RID [1]
Wed Nov 19 09:18:03 2014 Info: Message done DCID 741 MID 732 to RID [1]
Wed Nov 19 09:18:03 2014 Info: Message finished MID 732 done
`

// testSplit imports splitLog line by line with one record kept in memory
// (every fill then finds the other record in the store, not in memory)
// into a, and at once into b: both give the same records, each child with
// its parent's envelope and the parent's moved recipients split off.
func testSplit(t *testing.T, a, b tracking.Store) {
	ctx := context.Background()
	for _, c := range []struct {
		s     tracking.Store
		chunk int
		open  int
	}{{a, 1, 1}, {b, 0, 0}} {
		tr := tracking.NewTracker(c.s, tracking.Options{ChunkSize: c.chunk, MaxOpen: c.open})
		im := &tracking.Importer{Tracker: tr, Host: "esa1", Location: time.UTC}
		if err := im.Import(ctx, strings.NewReader(splitLog)); err != nil {
			t.Fatalf("Import: %v", err)
		}
	}
	keys := tracking.Keys{Conns: []tracking.ConnKey{{Host: "esa1", Kind: event.InboundConn, ID: 700}, {Host: "esa1", Kind: event.InboundConn, ID: 0}}}
	for _, mid := range []uint64{701, 702, 703, 721, 722, 731, 732} {
		keys.Messages = append(keys.Messages, tracking.MessageKey{Host: "esa1", MID: mid})
	}
	got := load(t, a, keys)
	sameRecords(t, got, load(t, b, keys))
	ms := map[uint64]*tracking.Message{}
	for _, m := range got.Messages {
		ms[m.MID] = m
	}
	rcpts := func(m *tracking.Message) string {
		var parts []string
		for _, r := range m.Recipients {
			parts = append(parts, fmt.Sprintf("%d %s %s %s", r.RID, r.Address, r.Status, r.Response))
		}
		return strings.Join(parts, "; ")
	}
	for _, w := range []struct {
		mid    uint64
		status tracking.Status
		rcpts  string
	}{
		{701, tracking.Split, "0 user25@mycompany.com split split off to MID 703 (SL/BL configuration); " +
			"1 user26@mycompany.com split split off to MID 703 (SL/BL configuration); 2 user37@mycompany.com split split off to MID 702 (SL/BL configuration)"},
		{702, tracking.Delivered, "0 user37@mycompany.com delivered "},
		{703, tracking.Delivered, "0 user25@mycompany.com delivered ; 1 user26@mycompany.com delivered "},
		{721, tracking.Delivered, "0 ceo@example.com delivered ; 1 x@example.net split split off to MID 722 (per-recipient policy DEFAULT); 2 cfo@example.com delivered "},
		{722, tracking.Bounced, "1 x@example.net bounced Unknown address error: 550 5.1.1 User unknown"},
		{731, tracking.Delivered, "0 a@example.com delivered ; 1 b@example.net split split off to MID 732 (per-recipient policy DEFAULT)"},
		{732, tracking.Delivered, "1 b@example.net delivered "},
	} {
		m := ms[w.mid]
		if m == nil {
			t.Errorf("MID %d not stored", w.mid)
			continue
		}
		if m.Status != w.status || rcpts(m) != w.rcpts {
			t.Errorf("MID %d: %s, recipients\n %s\nwant %s,\n %s", w.mid, m.Status, rcpts(m), w.status, w.rcpts)
		}
	}
	// The children have their parent's envelope and connection.
	for _, mid := range []uint64{702, 703} {
		c, p := ms[mid], ms[701]
		if c == nil || p == nil {
			continue
		}
		if c.Sender != "user15@fjvco.com" || c.Subject != "Problem report" || c.MessageID != "<701@fjvco.com>" || c.Size != 56534 ||
			c.ICID != 700 || c.RemoteIP != "69.67.18.139" || c.RemoteHost != "mail.fjvco.com" || c.SenderGroup != "UNKNOWNLIST" {
			t.Errorf("MID %d envelope: %+v; its parent's %+v", mid, *c, *p)
		}
	}
	if c := ms[722]; c == nil || c.Sender != "alice@example.com" || c.Size != 4096 || c.ICID != 720 {
		t.Errorf("MID 722 envelope: %+v", c)
	}
	if c := ms[732]; c == nil || c.Sender != "bob@example.com" || c.Size != 100 || c.ICID != 730 {
		t.Errorf("MID 732 envelope: %+v", c)
	}
	// The parent alone was begun on the connection; ICID 0 (the gateway
	// itself) is no connection.
	if len(got.Conns) != 1 || !slices.Equal(got.Conns[0].MIDs, []uint64{701}) {
		t.Errorf("connections: %+v, want ICID 700 with MID 701 alone", got.Conns)
	}
	// Searches an administrator makes find both sides.
	for _, q := range []struct {
		q    tracking.Query
		want []uint64
	}{
		{tracking.Query{Status: tracking.Split}, []uint64{701}},
		{tracking.Query{Recipient: "USER26@mycompany.com"}, []uint64{701, 703}},
		{tracking.Query{ICID: 700}, []uint64{701, 702, 703}},
		{tracking.Query{Sender: "alice@example.com"}, []uint64{721, 722}},
		{tracking.Query{Subject: "problem"}, []uint64{701, 702, 703}},
	} {
		for _, s := range []tracking.Store{a, b} {
			found, err := s.Search(ctx, q.q)
			if err != nil {
				t.Fatal(err)
			}
			var mids []uint64
			for _, m := range found {
				mids = append(mids, m.MID)
			}
			slices.Sort(mids)
			if !slices.Equal(mids, q.want) {
				t.Errorf("Search %+v = %v, want %v", q.q, mids, q.want)
			}
		}
	}
	h, err := a.Histogram(ctx, tracking.Query{}, 24*time.Hour)
	if err != nil || len(h) != 1 || h[0].Status[tracking.Split] != 1 {
		t.Errorf("Histogram = %+v, %v; want one split message", h, err)
	}
}
