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
// over a minute, see RELIABILITY.md "A sender that never reads, on port
// 9501").
type ackGate struct {
	raw syscall.RawConn // nil: no TCP socket to ask, always open
	// edge is the right edge of the client's window (bytes it acknowledged
	// plus its window) when it last moved, and room the window left free
	// then. A client that does not read never moves its edge: the server's
	// lines only use up the room.
	edge uint64
	room int64
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

// peerState is what the kernel knows of the client's side of a socket.
type peerState struct {
	wnd     uint32 // the window the client advertised last (tcpi_snd_wnd)
	acked   uint64 // bytes the client acknowledged (tcpi_bytes_acked)
	unacked int    // bytes of the send queue not yet acknowledged (SIOCOUTQ)
}

// open reports whether the acker may write a line of up to line bytes:
// while more than a quarter of the room the client's window had when its
// edge last moved is still free (most of what was written since has been
// read, or there was plenty of room); or when the client sent nothing for
// idleAfter (it may be waiting for this ack), everything written before
// was acknowledged and its window takes the line. The stall needs the
// client to be sending, and one line per pause does not fill a window the
// way a stream of lines does.
func (g *ackGate) open(idle bool, line int) bool {
	if g.raw == nil {
		return true
	}
	p, ok := peerWindow(g.raw)
	if !ok {
		return true // no answer: the write finds out what is wrong
	}
	if p.wnd == 0 && g.edge == 0 {
		return true // a kernel that does not report the window
	}
	free := int64(p.wnd) - int64(p.unacked)
	if edge := p.acked + uint64(p.wnd); edge > g.edge {
		g.edge, g.room = edge, free // the client made room: count from here
	}
	return 4*free > g.room || idle && p.unacked == 0 && free >= int64(line)
}
