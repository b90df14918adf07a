package smtptest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PythonDKIM is the Python that has Debian's python3-dkim (dkimpy, the
// library of the dkimverify and dkimsign commands), installed by
// scripts/test-deps.sh.
const PythonDKIM = "/usr/bin/python3"

// dkimVerify is dkimverify (dkim/dkimverify.py) with two changes: the
// key is looked up on the test's DNS server (dkimverify asks the system's
// resolvers), and every signature is verified, the first failure ending
// it. It prints "signature ok" for each.
const dkimVerify = `
import sys, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = [sys.argv[1]]
r.port = int(sys.argv[2])
r.lifetime = 10
dns.resolver.default_resolver = r
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
n = sum(1 for k, v in d.headers if k.lower() == b"dkim-signature")
if n == 0:
    print("no signature")
    sys.exit(1)
for i in range(n):
    if not d.verify(i):
        print("signature %d verification failed" % i)
        sys.exit(1)
    print("signature ok")
`

// NeedPythonDKIM skips the test where python3-dkim is not installed, and
// fails it when CI=1 (it must run there).
func NeedPythonDKIM(t testing.TB) {
	t.Helper()
	if err := exec.Command(PythonDKIM, "-c", "import dkim, dns.resolver, nacl").Run(); err != nil {
		if os.Getenv("CI") == "1" {
			t.Fatalf("CI=1 and python3-dkim (with dnspython and pynacl) is missing: %v", err)
		}
		t.Skipf("python3-dkim is missing (scripts/test-deps.sh installs it): %v", err)
	}
}

// DKIMVerify verifies every DKIM-Signature of msg with dkimpy, the
// independent implementation, looking the keys up on dnsAddr (a DNS from
// StartDNS). It returns dkimpy's verdict and what it printed.
func DKIMVerify(t testing.TB, dnsAddr string, msg []byte) (bool, string) {
	t.Helper()
	NeedPythonDKIM(t)
	host, port, err := net.SplitHostPort(dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, PythonDKIM, "-c", dkimVerify, host, port)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("dkimpy did not finish: %v", ctx.Err())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("dkimpy: %v", err)
	}
	return err == nil, strings.TrimSpace(string(out))
}
