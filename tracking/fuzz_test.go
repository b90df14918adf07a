package tracking_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/internal/sqlrow"
)

// memStore keeps records in maps, for fuzzing the fold: SQLite under the
// fuzzer's coverage instrumentation runs a few inputs a minute. The store
// suite (storetest) holds the real backends to the same Write and Load.
type memStore struct {
	tracking.Store // Search, Histogram, Watermark: not used by the Tracker
	mu             sync.Mutex
	msgs           map[tracking.MessageKey]tracking.Message
	conns          map[tracking.ConnKey]tracking.Conn
}

func (m *memStore) Write(_ context.Context, b *tracking.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range b.Messages {
		c := *r
		c.Lines = append([]tracking.Line(nil), r.Lines...)
		c.Recipients = append([]tracking.Recipient(nil), r.Recipients...)
		c.DCIDs = append([]uint64(nil), r.DCIDs...)
		c.SPF = append([]tracking.SPFCheck(nil), r.SPF...)
		c.DKIM = append([]tracking.DKIMCheck(nil), r.DKIM...)
		if r.DMARC != nil {
			d := *r.DMARC
			c.DMARC = &d
		}
		m.msgs[tracking.MessageKey{r.Host, r.MID}] = c
	}
	for _, r := range b.Conns {
		c := *r
		c.Lines = append([]tracking.Line(nil), r.Lines...)
		c.MIDs = append([]uint64(nil), r.MIDs...)
		m.conns[tracking.ConnKey{r.Host, r.Kind, r.ID}] = c
	}
	return nil
}

func (m *memStore) Load(_ context.Context, k tracking.Keys) (*tracking.Batch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := &tracking.Batch{}
	for _, key := range k.Messages {
		if r, ok := m.msgs[key]; ok {
			c := r
			c.Lines = append([]tracking.Line(nil), r.Lines...)
			c.Recipients = append([]tracking.Recipient(nil), r.Recipients...)
			c.SPF = append([]tracking.SPFCheck(nil), r.SPF...)
			c.DKIM = append([]tracking.DKIMCheck(nil), r.DKIM...)
			if r.DMARC != nil {
				d := *r.DMARC
				c.DMARC = &d
			}
			b.Messages = append(b.Messages, &c)
		}
	}
	for _, key := range k.Conns {
		if r, ok := m.conns[key]; ok {
			c := r
			c.Lines = append([]tracking.Line(nil), r.Lines...)
			b.Conns = append(b.Conns, &c)
		}
	}
	return b, nil
}

// FuzzImport feeds arbitrary text as a mail log: the import must not fail
// or panic, every line it keeps must survive the store's encoding, and
// importing the same text again must change nothing.
func FuzzImport(f *testing.F) {
	for _, dir := range []string{"testdata/fold", "../maillog/testdata"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("Mon Nov 23 10:00:00 2026 Info: MID 1 ICID 1 RID 0 To: <a@b>\nMon Nov 23 10:00:00 2026 Info: MID 1 ICID 1 RID 0 To: <a@b>\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		s := &memStore{msgs: map[tracking.MessageKey]tracking.Message{}, conns: map[tracking.ConnKey]tracking.Conn{}}
		ctx := context.Background()
		for round := range 2 {
			tr := tracking.NewTracker(s, tracking.Options{ChunkSize: 3})
			im := &tracking.Importer{Tracker: tr, Host: "gw", Location: time.UTC}
			if err := im.Import(ctx, bytes.NewReader(log)); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if st := tr.Stats(); round == 1 && (st.Applied != 0 || st.Messages != 0 || st.Conns != 0) {
				t.Fatalf("importing again changed the store: %+v", st)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.msgs {
			back, err := sqlrow.DecodeLines(sqlrow.EncodeLines(m.Lines))
			if err != nil || len(back) != len(m.Lines) {
				t.Fatalf("MID %d: lines do not survive the encoding: %v", m.MID, err)
			}
			if _, err := sqlrow.DecodeRecipients(sqlrow.EncodeRecipients(m.Recipients)); err != nil {
				t.Fatal(err)
			}
			// The authentication results, read from the lines, survive the
			// auth column whole.
			var back2 tracking.Message
			if err := sqlrow.DecodeAuth(sqlrow.EncodeAuth(&m), &back2); err != nil ||
				!reflect.DeepEqual(back2.SPF, nilIfEmpty(m.SPF)) || !reflect.DeepEqual(back2.DKIM, nilIfEmpty(m.DKIM)) ||
				!reflect.DeepEqual(back2.DMARC, m.DMARC) {
				t.Fatalf("MID %d: results %+v %+v %+v read back as %+v %+v %+v (%v)", m.MID, m.SPF, m.DKIM, m.DMARC, back2.SPF, back2.DKIM, back2.DMARC, err)
			}
		}
	})
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
