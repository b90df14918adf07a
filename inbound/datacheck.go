package inbound

import (
	"context"
	"io"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// DataCheck judges a whole message at the end of DATA, before it is
// committed and answered: the scanning engines, when every recipient's
// mail policy says to reject a positive message at SMTP time (package
// scanstage). It is called for messages of the incoming policies only.
type DataCheck interface {
	CheckData(ctx context.Context, env *queue.Envelope, msg io.ReaderAt, size int64) DataVerdict
}

// DataVerdict is a DataCheck's outcome. The zero DataVerdict accepts.
type DataVerdict struct {
	Reject bool
	// Reason is the "ICID n Receiving Failed: <reason>" text of a
	// rejection; Text the reply's text after "550 5.7.1".
	Reason, Text string
	// Events are the verdict lines of a rejection, logged before it.
	Events []event.Event
}

// dataCheckTimeout bounds a DataCheck: the client waits for its reply
// meanwhile. The engines' own timeouts are shorter.
const dataCheckTimeout = 2 * time.Minute

// checkData runs the server's DataCheck on a message that is not
// outgoing; a zero reply accepts it.
func (h *session) checkData(env *queue.Envelope, msg io.ReaderAt, size int64) smtp.Reply {
	if h.l.srv.DataCheck == nil || env.Outgoing {
		return smtp.Reply{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dataCheckTimeout)
	v := h.l.srv.DataCheck.CheckData(ctx, env, msg, size)
	cancel()
	if !v.Reject {
		return smtp.Reply{}
	}
	for _, ev := range v.Events {
		h.emit(ev)
	}
	h.failed(v.Reason)
	return smtp.Reply{Code: 550, Enhanced: "5.7.1", Text: v.Text}
}
