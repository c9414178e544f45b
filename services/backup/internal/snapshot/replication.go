package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrTruncated marks a transfer that ended before the whole RDB arrived.
var ErrTruncated = errors.New("RDB transfer truncated")

// eofMarkLen is the length of the random delimiter of a diskless transfer.
const eofMarkLen = 40

// transfer is what the server said about the RDB it sent.
type transfer struct {
	ReplID   string // replication ID from +FULLRESYNC
	Offset   int64  // replication offset the RDB corresponds to
	Diskless bool   // sent as $EOF:<mark> (diskless) rather than $<len>
	Bytes    int64
}

// deadlineConn refreshes the read deadline before every read, so a stalled
// transfer fails after idle without bounding a long healthy one.
type deadlineConn struct {
	net.Conn
	idle time.Duration
}

func (c deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// fetchRDB takes a full RDB from the server at addr over the replication
// protocol, the way redis-cli --rdb does: AUTH, REPLCONF rdb-only 1 (Redis
// 7.0+: the server sends the snapshot and no replication stream after it),
// REPLCONF capa eof (so a server with repl-diskless-sync streams it without
// touching its disk), then PSYNC ? -1, whose +FULLRESYNC reply carries the
// replication ID and offset of the snapshot. The RDB goes to w; progress is
// called after every chunk. The connection is closed on return.
func fetchRDB(ctx context.Context, addr, username, password string, idle time.Duration, w io.Writer, progress func(int64)) (transfer, error) {
	var t transfer
	d := net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return t, fmt.Errorf("dial redis %s: %w", addr, err)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	conn := deadlineConn{Conn: raw, idle: idle}
	br := bufio.NewReaderSize(conn, 1<<20)

	command := func(args ...string) (string, error) {
		if err := raw.SetWriteDeadline(time.Now().Add(idle)); err != nil {
			return "", err
		}
		if _, err := raw.Write(encodeCommand(args...)); err != nil {
			return "", fmt.Errorf("send %s to %s: %w", args[0], addr, err)
		}
		var line string
		for line == "" { // skip "\n" keepalives a busy server sends first
			var err error
			if line, err = readLine(br); err != nil {
				return "", fmt.Errorf("read reply to %s from %s: %w", args[0], addr, ctxErr(ctx, err))
			}
		}
		if strings.HasPrefix(line, "-") {
			return line, fmt.Errorf("%s on %s: %s", args[0], addr, line[1:])
		}
		return line, nil
	}
	switch {
	case username != "":
		if _, err := command("AUTH", username, password); err != nil {
			return t, err
		}
	case password != "":
		if _, err := command("AUTH", password); err != nil {
			return t, err
		}
	}
	if _, err := command("REPLCONF", "rdb-only", "1"); err != nil {
		// Redis before 7.0: the replication stream follows the RDB; we stop
		// reading after the RDB and close, which is harmless.
		if !strings.Contains(err.Error(), "Unrecognized REPLCONF option") {
			return t, err
		}
	}
	if _, err := command("REPLCONF", "capa", "eof"); err != nil {
		return t, err
	}
	line, err := command("PSYNC", "?", "-1")
	if err != nil {
		return t, err
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "+FULLRESYNC" {
		return t, fmt.Errorf("PSYNC on %s: unexpected reply %q", addr, line)
	}
	t.ReplID = f[1]
	if t.Offset, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return t, fmt.Errorf("PSYNC on %s: offset in %q: %w", addr, line, err)
	}

	// While the server prepares the snapshot it sends bare "\n" keepalives.
	var hdr string
	for {
		hdr, err = readLine(br)
		if err != nil {
			return t, fmt.Errorf("wait for RDB from %s: %w", addr, ctxErr(ctx, err))
		}
		if hdr != "" {
			break
		}
	}
	if !strings.HasPrefix(hdr, "$") {
		return t, fmt.Errorf("RDB header from %s: %q", addr, hdr)
	}
	if mark, ok := strings.CutPrefix(hdr, "$EOF:"); ok {
		if len(mark) != eofMarkLen {
			return t, fmt.Errorf("RDB header from %s: EOF mark of %d bytes", addr, len(mark))
		}
		t.Diskless = true
		t.Bytes, err = copyUntilMark(w, br, []byte(mark), progress)
	} else {
		n, perr := strconv.ParseInt(hdr[1:], 10, 64)
		if perr != nil || n < 0 {
			return t, fmt.Errorf("RDB header from %s: %q", addr, hdr)
		}
		t.Bytes, err = copyN(w, br, n, progress)
	}
	if err != nil {
		return t, fmt.Errorf("read RDB from %s: %w", addr, ctxErr(ctx, err))
	}
	return t, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func encodeCommand(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

// readLine reads one line; "\r\n" and a lone "\n" (keepalive) both end it.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("connection closed: %w", ErrTruncated)
		}
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

const chunk = 1 << 20

// copyN copies exactly n bytes; fewer is ErrTruncated.
func copyN(w io.Writer, r io.Reader, n int64, progress func(int64)) (int64, error) {
	buf := make([]byte, chunk)
	var done int64
	for done < n {
		k, err := r.Read(buf[:min(int64(len(buf)), n-done)])
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return done, werr
			}
			done += int64(k)
			if progress != nil {
				progress(done)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return done, fmt.Errorf("got %d of %d bytes: %w", done, n, ErrTruncated)
			}
			return done, fmt.Errorf("after %d of %d bytes: %w", done, n, err)
		}
	}
	return done, nil
}

// copyUntilMark copies a diskless transfer: the RDB ends with the 40-byte
// mark, which is not part of it. The last 40 bytes read are held back until
// more data shows they are not the mark.
func copyUntilMark(w io.Writer, r io.Reader, mark []byte, progress func(int64)) (int64, error) {
	buf := make([]byte, eofMarkLen+chunk)
	held := 0 // bytes at the start of buf not written yet (at most eofMarkLen)
	var done int64
	for {
		k, err := r.Read(buf[held:])
		held += k
		if i := bytes.Index(buf[:held], mark); i >= 0 {
			if _, werr := w.Write(buf[:i]); werr != nil {
				return done, werr
			}
			done += int64(i)
			if progress != nil {
				progress(done)
			}
			return done, nil
		}
		if held > eofMarkLen {
			out := held - eofMarkLen
			if _, werr := w.Write(buf[:out]); werr != nil {
				return done, werr
			}
			done += int64(out)
			copy(buf, buf[out:held])
			held = eofMarkLen
			if progress != nil {
				progress(done)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return done, fmt.Errorf("connection closed after %d bytes without the end mark: %w", done+int64(held), ErrTruncated)
			}
			return done, fmt.Errorf("after %d bytes: %w", done, err)
		}
	}
}
