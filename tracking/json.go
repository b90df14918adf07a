package tracking

import (
	"encoding/json"
	"time"
)

// MarshalJSON writes empty lists as [] and a zero time (a message not finished, a recipient with
// no retry pending) as null rather than as the year 1.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message
	if m.DCIDs == nil {
		m.DCIDs = []uint64{}
	}
	if m.Recipients == nil {
		m.Recipients = []Recipient{}
	}
	if m.Verdicts == nil {
		m.Verdicts = []Verdict{}
	}
	if m.SPF == nil {
		m.SPF = []SPFCheck{}
	}
	if m.DKIM == nil {
		m.DKIM = []DKIMCheck{}
	}
	return json.Marshal(struct {
		plain
		Started  *time.Time `json:"started"`
		Finished *time.Time `json:"finished"`
		Updated  *time.Time `json:"updated"`
	}{plain(m), timeOrNil(m.Started), timeOrNil(m.Finished), timeOrNil(m.Updated)})
}

// MarshalJSON: see Message.MarshalJSON.
func (r Recipient) MarshalJSON() ([]byte, error) {
	type plain Recipient
	return json.Marshal(struct {
		plain
		NextRetry *time.Time `json:"next_retry"`
		Time      *time.Time `json:"time"`
	}{plain(r), timeOrNil(r.NextRetry), timeOrNil(r.Time)})
}

// MarshalJSON: see Message.MarshalJSON.
func (c Conn) MarshalJSON() ([]byte, error) {
	type plain Conn
	return json.Marshal(struct {
		plain
		Kind     string     `json:"kind"`
		Started  *time.Time `json:"started"`
		Finished *time.Time `json:"finished"`
	}{plain(c), c.Kind.String(), timeOrNil(c.Started), timeOrNil(c.Finished)})
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
