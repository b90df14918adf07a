package inbound

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/rfc822"
)

// benchMessage is a typical message as the listener receives it: a header
// of 20 fields (folded Received, DKIM and ARC among them, 3 KB) and a
// 10 KB body.
var benchMessage = []byte(strings.Join([]string{
	"Received: from mail-out.example.org (mail-out.example.org [192.0.2.10])",
	"\tby mx.example.net (Postfix) with ESMTPS id 4Xyz123",
	"\tfor <bob@example.net>; Mon, 7 Dec 2026 08:30:00 +0000 (UTC)",
	"Received: from [10.0.0.5] (unknown [10.0.0.5])",
	"\tby mail-out.example.org with ESMTPSA id abcdef",
	"\tfor <bob@example.net>; Mon, 7 Dec 2026 08:29:59 +0000",
	"ARC-Seal: i=1; a=rsa-sha256; t=1733560199; cv=none; d=example.org; s=arc;",
	"\tb=" + strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 8),
	"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;",
	"\ts=arc; h=from:to:subject:date:message-id; bh=" + strings.Repeat("x", 44) + ";",
	"\tb=" + strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 8),
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel;",
	"\th=from:to:subject:date:message-id:mime-version:content-type;",
	"\tbh=" + strings.Repeat("y", 44) + ";",
	"\tb=" + strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 8),
	"From: Ann Example <ann@example.org>",
	"To: Bob Example <bob@example.net>",
	"Cc: carol@example.net, dave@example.net",
	"Subject: =?UTF-8?Q?Quarterly_report_=E2=80=93_Gr=C3=BC=C3=9Fe?=",
	"\t=?UTF-8?Q?_aus_M=C3=BCnchen?=",
	"Date: Mon, 7 Dec 2026 09:29:59 +0100",
	"Message-ID: <20261207082959.abcdef@mail-out.example.org>",
	"MIME-Version: 1.0",
	"Content-Type: multipart/alternative; boundary=\"000000000000abcdef\"",
	"X-Mailer: Example Mail 1.0",
	"List-Unsubscribe: <mailto:unsubscribe@example.org>",
	"Thread-Topic: Quarterly report",
	"Thread-Index: " + strings.Repeat("AQHa", 10),
	"",
	strings.Repeat("body line of the message, as long as lines usually are in mail\r\n", 160),
}, "\r\n"))

func BenchmarkHeader(b *testing.B) {
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for b.Loop() {
		// What Data reads of a message: its header lines, Message-ID and
		// Subject.
		h := rfc822.ReadHeader(benchMessage)
		subject, ok := h.Subject()
		if h.Lines != 28 || !ok || subject == "" || h.MessageID() == "" {
			b.Fatalf("%+v", h)
		}
	}
}
