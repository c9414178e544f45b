package tcpserver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// peerWindow returns the window the peer advertised last (tcpi_snd_wnd;
// 0 from a kernel too old to report it) and the bytes of the send queue
// the peer has not acknowledged (SIOCOUTQ).
func peerWindow(raw syscall.RawConn) (wnd uint32, unacked int, ok bool) {
	var err error
	cerr := raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err != nil {
			return
		}
		wnd = info.Snd_wnd
		unacked, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	})
	return wnd, unacked, cerr == nil && err == nil
}
