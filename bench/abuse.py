#!/usr/bin/env python3
"""abuse.py - the abuse cases of issue 13 as an SMTP client, for bench/abuse.sh.

    abuse.py CASE --addr HOST:PORT [options]

Each case prints one line of KEY=VALUE pairs (values without spaces are bare, others
quoted with shlex) that abuse.sh puts side by side. Every loop is bounded in count and
time; every socket has a timeout; only loopback addresses are used.
"""
import argparse
import selectors
import shlex
import socket
import sys
import threading
import time

TIMEOUT = 15.0  # any single reply


def loopback(addr):
    if not addr.startswith("127."):
        sys.exit(f"abuse.py: {addr}: loopback only")
    return addr


class Session:
    """One SMTP connection from a given loopback source address, replies read in lockstep."""

    def __init__(self, addr, src, timeout=TIMEOUT):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((loopback(host), int(port)), timeout=timeout,
                                             source_address=(loopback(src), 0))
        self.buf = b""

    def reply(self):
        """The next reply: (code, last line); (0, why) once the connection is closed."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                try:
                    data = self.sock.recv(65536)
                except (socket.timeout, OSError) as e:
                    return 0, f"closed ({e.__class__.__name__})"
                if not data:
                    return 0, "closed"
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                try:
                    return int(line[:3]), line
                except ValueError:
                    return 0, line

    def cmd(self, text):
        try:
            self.sock.sendall(text.encode() + b"\r\n")
        except OSError as e:
            return 0, f"closed ({e.__class__.__name__})"
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def out(**kv):
    print(" ".join(f"{k}={shlex.quote(str(v))}" for k, v in kv.items()), flush=True)


def send_message(addr, src, sender, rcpt, subject, helo="genuine.example"):
    """One message; True if the 250 after the dot came."""
    try:
        s = Session(addr, src)
    except OSError:
        return False
    try:
        if s.reply()[0] != 220 or s.cmd(f"EHLO {helo}")[0] != 250:
            return False
        if s.cmd(f"MAIL FROM:<{sender}>")[0] != 250 or s.cmd(f"RCPT TO:<{rcpt}>")[0] != 250:
            return False
        if s.cmd("DATA")[0] != 354:
            return False
        body = f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n\r\nhello\r\n."
        ok = s.cmd(body)[0] == 250
        s.cmd("QUIT")
        return ok
    finally:
        s.close()


def case_flood(a):
    """2 connections loop MAIL/RSET, reconnecting when cut; a genuine sender sends one a second."""
    stop = time.monotonic() + a.seconds
    lock = threading.Lock()
    st = {"cycles": 0, "connections": 0, "refused_connects": 0, "cuts": {}}

    def flooder(i):
        for _ in range(a.max_connections):  # bounded: reconnects
            if time.monotonic() >= stop:
                return
            try:
                s = Session(a.addr, a.src, timeout=5)
            except OSError:
                with lock:
                    st["refused_connects"] += 1
                time.sleep(0.01)
                continue
            with lock:
                st["connections"] += 1
            code, line = s.reply()
            if code == 220 and s.cmd(f"EHLO flood{i}.example")[0] == 250:
                n = 0
                while time.monotonic() < stop and n < a.max_cycles:
                    code, line = s.cmd("MAIL FROM:<x@flood.example>")
                    if code != 250:
                        break
                    code, line = s.cmd("RSET")
                    if code != 250:
                        break
                    n += 1
                with lock:
                    st["cycles"] += n
            if time.monotonic() < stop:
                key = line[:60]
                with lock:
                    st["cuts"][key] = st["cuts"].get(key, 0) + 1
            s.close()

    threads = [threading.Thread(target=flooder, args=(i,)) for i in range(a.conns)]
    for t in threads:
        t.start()
    sent = accepted = 0
    t0 = time.monotonic()
    while time.monotonic() < stop and sent < a.seconds + 5:
        sent += 1
        if send_message(a.addr, a.genuine_src, a.genuine, a.rcpt, f"genuine {sent} {a.tag}"):
            accepted += 1
        next_at = t0 + sent
        if next_at > time.monotonic():
            time.sleep(next_at - time.monotonic())  # paces the sender; nothing is waited for
    for t in threads:
        t.join(a.seconds + 30)
    cut = max(st["cuts"].items(), key=lambda kv: kv[1])[0] if st["cuts"] else "-"
    out(cycles=st["cycles"], connections=st["connections"], refused_connects=st["refused_connects"],
        genuine_sent=sent, genuine_accepted=accepted, cut=cut)


def case_errors(a):
    """500 RCPTs the gateway refuses, in one session."""
    s = Session(a.addr, a.src)
    s.reply()
    s.cmd("EHLO errors.example")
    s.cmd("MAIL FROM:<e@errors.example>")
    t0 = time.monotonic()
    n = refused = 0
    last = "-"
    first_slow = "-"
    for i in range(a.n):
        ts = time.monotonic()
        code, line = s.cmd(f"RCPT TO:<nobody{i}@{a.domain}>")
        if code == 0:
            break
        n += 1
        if code >= 400:
            refused += 1
        if first_slow == "-" and time.monotonic() - ts >= 0.5:
            first_slow = n
        last = line
        if code == 421:
            break
    out(rcpts_answered=n, refused=refused, seconds=f"{time.monotonic() - t0:.1f}",
        first_delayed=first_slow, last=last[:70], closed="yes" if s.cmd("NOOP")[0] == 0 else "no")
    s.close()


def case_junk(a):
    """3,000 NOOPs in one session."""
    s = Session(a.addr, a.src)
    s.reply()
    s.cmd("EHLO junk.example")
    ok = 0
    last = "-"
    for _ in range(a.n):
        code, line = s.cmd("NOOP")
        if code == 0:
            break
        last = line
        if code != 250:
            break
        ok += 1
    out(noop_250=ok, last=last[:70], closed="yes" if s.cmd("NOOP")[0] == 0 else "no")
    s.close()


def case_slots(a):
    """N idle connections from one address, then one normal client from another."""
    sel = selectors.DefaultSelector()
    socks = []
    failed = 0
    host, port = a.addr.rsplit(":", 1)
    for _ in range(a.n):
        try:
            c = socket.create_connection((loopback(host), int(port)), timeout=5,
                                         source_address=(loopback(a.src), 0))
        except OSError:
            failed += 1
            continue
        c.setblocking(False)
        socks.append(c)
        sel.register(c, selectors.EVENT_READ, bytearray())
    # the greetings, within a deadline
    greeted = refused = closed = 0
    first_refusal = "-"
    deadline = time.monotonic() + a.wait
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if data:
                key.data.extend(data)
                if b"\n" not in key.data:
                    continue
                if key.data.startswith(b"220"):
                    greeted += 1
                else:
                    refused += 1
                    if first_refusal == "-":
                        first_refusal = bytes(key.data).split(b"\r\n")[0].decode("utf-8", "replace")[:80]
            else:
                closed += 1
            sel.unregister(key.fileobj)
            pending -= 1
    # the normal client, while they are held
    try:
        s = Session(a.addr, a.other_src, timeout=a.wait)
        code, line = s.reply()
        s.close()
    except OSError as e:
        code, line = 0, f"connect failed ({e.__class__.__name__})"
    for c in socks:
        c.close()
    other = line[:60] if code else f"no greeting in {a.wait:.0f} s" if "timeout" in line else line
    out(opened=len(socks), connect_failed=failed, got_220=greeted, refused=refused, closed_silent=closed,
        no_reply=pending, refusal=first_refusal, other_client=other)


def case_routing(a):
    """Sender-specified routing from a client that may not relay."""
    replies = []
    for rcpt in (f"user%other.example@{a.domain}", f"other.example!user@{a.domain}",
                 f'"user@other.example"@{a.domain}'):
        s = Session(a.addr, a.src)
        s.reply()
        s.cmd("EHLO routing.example")
        s.cmd("MAIL FROM:<r@routing.example>")
        replies.append(s.cmd(f"RCPT TO:<{rcpt}>")[1][:80])
        s.cmd("QUIT")
        s.close()
    out(percent=replies[0], bang=replies[1], quoted=replies[2])


def case_dups(a):
    """255 RCPTs of one mailbox, the domain in mixed case, then one message."""
    s = Session(a.addr, a.src)
    s.reply()
    s.cmd("EHLO dups.example")
    s.cmd(f"MAIL FROM:<{a.sender}>")
    ok = 0
    local, domain = a.rcpt.split("@")
    for i in range(a.n):
        d = "".join(ch.upper() if (i >> (j % 8)) & 1 else ch.lower() for j, ch in enumerate(domain))
        if s.cmd(f"RCPT TO:<{local}@{d}>")[0] == 250:
            ok += 1
    s.cmd("DATA")
    code, line = s.cmd(f"Subject: dups-{a.tag}\r\n\r\nduplicates\r\n.")
    s.cmd("QUIT")
    s.close()
    out(rcpt_250=ok, data=line[:50])


def case_pipelining(a):
    """HELO and a whole transaction in one write, before the greeting's reply to HELO."""
    host, port = a.addr.rsplit(":", 1)
    c = socket.create_connection((loopback(host), int(port)), timeout=TIMEOUT,
                                 source_address=(loopback(a.src), 0))
    data = b""
    while b"\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    c.sendall((f"HELO pipe.example\r\nMAIL FROM:<{a.sender}>\r\nRCPT TO:<{a.rcpt}>\r\nDATA\r\n"
               f"Subject: pipe-{a.tag}\r\n\r\npipelined\r\n.\r\nQUIT\r\n").encode())
    replies = b""
    deadline = time.monotonic() + 10
    c.settimeout(1)
    while time.monotonic() < deadline:
        try:
            chunk = c.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        replies += chunk
    c.close()
    lines = [ln for ln in replies.decode("utf-8", "replace").split("\r\n") if ln[:3].isdigit() and ln[3:4] != "-"]
    out(codes=",".join(ln[:3] for ln in lines) or "-", first_reply=(lines[0][:80] if lines else "-"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["flood", "errors", "junk", "slots", "routing", "dups", "pipelining"])
    p.add_argument("--addr", required=True)
    p.add_argument("--src", default="127.0.0.2")
    p.add_argument("--other-src", default="127.0.0.3")
    p.add_argument("--genuine-src", default="127.0.0.1")
    p.add_argument("--genuine", default="genuine@sender.example")
    p.add_argument("--sender", default="sender@sender.example")
    p.add_argument("--rcpt", default="user@ours.example")
    p.add_argument("--domain", default="other.example")
    p.add_argument("--tag", default="abuse")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--conns", type=int, default=2)
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--wait", type=float, default=10)
    p.add_argument("--max-cycles", type=int, default=10_000_000)
    p.add_argument("--max-connections", type=int, default=100_000)
    a = p.parse_args()
    {"flood": case_flood, "errors": case_errors, "junk": case_junk, "slots": case_slots,
     "routing": case_routing, "dups": case_dups, "pipelining": case_pipelining}[a.case](a)


if __name__ == "__main__":
    main()
