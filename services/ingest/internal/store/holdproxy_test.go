package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
)

// holdProxy is a loopback TCP proxy to a Redis server that can hold back
// what clients send on the connections open at a given moment, and release
// it later: the bytes of an attempt that the client gave up on (a read
// timeout) reach Redis only after the client's retry on a new connection,
// as TCP retransmission through a congested or partitioned path can deliver
// them.
type holdProxy struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	conns []*proxyConn
	wg    sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn

	mu       sync.Mutex
	hold     bool          // client bytes are kept in held, not forwarded
	held     []byte        // what the client sent while held
	released bool          // release wrote held and a PING upstream
	replies  []byte        // what the server answered after the release
	pong     chan struct{} // closed when the PING's reply arrived
}

// newHoldProxy listens on 127.0.0.1 and forwards every connection to
// upstream. It is closed in t.Cleanup.
func newHoldProxy(t *testing.T, upstream string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &holdProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial.
func (p *holdProxy) Addr() string { return p.ln.Addr().String() }

func (p *holdProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s, pong: make(chan struct{})}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); pc.fromClient() }()
		go func() { defer p.wg.Done(); pc.fromServer() }()
	}
}

// fromClient forwards client bytes, or keeps them while held. When the
// client goes away the server side stays open if bytes are held (release
// sends them and closes it).
func (pc *proxyConn) fromClient() {
	buf := make([]byte, 64<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			if pc.hold {
				pc.held = append(pc.held, buf[:n]...)
				pc.mu.Unlock()
			} else {
				pc.mu.Unlock()
				if _, werr := pc.server.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			pc.mu.Lock()
			hold := pc.hold
			pc.mu.Unlock()
			if !hold {
				pc.server.Close()
			}
			return
		}
	}
}

// fromServer forwards server bytes to the client while it is there; after a
// release it collects them until the PING's reply.
func (pc *proxyConn) fromServer() {
	buf := make([]byte, 64<<10)
	for {
		n, err := pc.server.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			if pc.released {
				pc.replies = append(pc.replies, buf[:n]...)
				if bytes.Contains(pc.replies, []byte("+PONG\r\n")) {
					select {
					case <-pc.pong:
					default:
						close(pc.pong)
					}
				}
			}
			pc.mu.Unlock()
			_, _ = pc.client.Write(buf[:n]) // fails once the client is gone
		}
		if err != nil {
			pc.client.Close()
			return
		}
	}
}

// holdAll holds back from now on what the clients of all open connections
// send. It returns how many connections it holds.
func (p *holdProxy) holdAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.mu.Lock()
		pc.hold = true
		pc.mu.Unlock()
	}
	return len(p.conns)
}

// heldBytes is how many bytes are held on all connections.
func (p *holdProxy) heldBytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pc := range p.conns {
		pc.mu.Lock()
		n += len(pc.held)
		pc.mu.Unlock()
	}
	return n
}

// release sends the held bytes of every held connection to the server,
// followed by a PING, and waits until the PING is answered: Redis has then
// executed everything held. It returns the server's replies to the held
// bytes and closes those connections.
func (p *holdProxy) release(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	var held []*proxyConn
	for _, pc := range p.conns {
		pc.mu.Lock()
		if pc.hold && len(pc.held) > 0 {
			held = append(held, pc)
		}
		pc.mu.Unlock()
	}
	p.mu.Unlock()
	var replies []string
	for _, pc := range held {
		pc.mu.Lock()
		data := append(pc.held, "*1\r\n$4\r\nPING\r\n"...)
		pc.held, pc.released = nil, true
		pc.mu.Unlock()
		if _, err := pc.server.Write(data); err != nil {
			return nil, fmt.Errorf("release %d held bytes: %w", len(data), err)
		}
		select {
		case <-pc.pong:
		case <-ctx.Done():
			return nil, fmt.Errorf("released bytes not answered: %w", ctx.Err())
		}
		pc.mu.Lock()
		replies = append(replies, string(pc.replies))
		pc.mu.Unlock()
		pc.server.Close()
	}
	if len(held) == 0 {
		return nil, errors.New("nothing held")
	}
	return replies, nil
}

func (p *holdProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
