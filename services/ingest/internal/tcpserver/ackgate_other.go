//go:build !linux

package tcpserver

import "syscall"

// peerWindow is not available here: the gate stays open.
func peerWindow(syscall.RawConn) (wnd uint32, unacked int, ok bool) { return 0, 0, false }
