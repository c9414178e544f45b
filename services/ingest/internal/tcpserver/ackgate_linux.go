package tcpserver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// peerWindow reads TCP_INFO (a kernel too old to report tcpi_snd_wnd
// leaves it 0) and SIOCOUTQ.
func peerWindow(raw syscall.RawConn) (p peerState, ok bool) {
	var err error
	cerr := raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err != nil {
			return
		}
		p.wnd, p.acked = info.Snd_wnd, info.Bytes_acked
		p.unacked, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	})
	return p, cerr == nil && err == nil
}
