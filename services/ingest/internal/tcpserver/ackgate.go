package tcpserver

import (
	"net"
	"syscall"
)

// ackGate tells the acker whether the client has made room for another
// ack line. Acks are cumulative, so holding the count back loses nothing;
// feeding a receive buffer that is not drained does harm: once a client's
// buffer is full of small unread segments, its kernel drops the server's
// segments, the TCP ACKs they carry included, and the client's own
// sending stalls in retransmission backoff (Linux 6.18: writes blocked for
// over a minute, see RELIABILITY.md "A sender that never reads, on port 9501").
type ackGate struct {
	raw    syscall.RawConn // nil: no TCP socket to ask, always open
	maxWnd uint32          // the largest window the client advertised
}

func newAckGate(nc net.Conn) ackGate {
	tc, ok := socket(nc).(*net.TCPConn)
	if !ok {
		return ackGate{}
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return ackGate{}
	}
	return ackGate{raw: raw}
}

// open reports whether the client's receive window, less what the server
// sent and the client has not acknowledged, is still more than a quarter
// of the largest window it advertised: most of what was written has been
// read. A quarter, not more, because a client sends a window update after
// a read only once its window would double (RFC 1122 sender-side silly
// window avoidance; Linux's tcp_cleanup_rbuf): a gate that closed earlier
// could wait on an update that never comes.
func (g *ackGate) open() bool {
	if g.raw == nil {
		return true
	}
	wnd, unacked, ok := peerWindow(g.raw)
	if !ok {
		return true // no answer: the write finds out what is wrong
	}
	g.maxWnd = max(g.maxWnd, wnd)
	if g.maxWnd == 0 {
		return true // a kernel that does not report the window
	}
	return 4*(int64(wnd)-int64(unacked)) > int64(g.maxWnd)
}
