package enginetest

import "syscall"

// dieWithParent makes the engine get SIGKILL when the test binary dies
// (killed by go test's -timeout, say) rather than outlive it.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
