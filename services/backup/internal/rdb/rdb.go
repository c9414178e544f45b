// Package rdb reads Redis RDB files (versions 1 to 12, written by Redis up to
// 7.4) the way redis-check-rdb does: header, opcodes, every value encoding,
// and the CRC-64 trailer. The backup image is FROM scratch and has no
// redis-check-rdb, so this package is what verifies a snapshot. Lists are
// decoded element by element (their listpacks and ziplists are walked and
// cross-checked against their headers); other types are parsed structurally
// and counted.
package rdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// Value types (the byte before a key) as defined in Redis's rdb.h.
const (
	TypeString          = 0
	TypeList            = 1
	TypeSet             = 2
	TypeZSet            = 3
	TypeHash            = 4
	TypeZSet2           = 5
	TypeModule          = 6
	TypeModule2         = 7
	TypeHashZipmap      = 9
	TypeListZiplist     = 10
	TypeSetIntset       = 11
	TypeZSetZiplist     = 12
	TypeHashZiplist     = 13
	TypeListQuicklist   = 14
	TypeStreamListpacks = 15
	TypeHashListpack    = 16
	TypeZSetListpack    = 17
	TypeListQuicklist2  = 18
	TypeStream2         = 19
	TypeSetListpack     = 20
	TypeStream3         = 21
)

// Opcodes.
const (
	opFunction2  = 0xf5
	opFunction   = 0xf6
	opModuleAux  = 0xf7
	opIdle       = 0xf8
	opFreq       = 0xf9
	opAux        = 0xfa
	opResizeDB   = 0xfb
	opExpireMS   = 0xfc
	opExpireSec  = 0xfd
	opSelectDB   = 0xfe
	opEOF        = 0xff
	maxVersion   = 12
	quicklistRaw = 1 // quicklist2 node container: one plain element
	quicklistLP  = 2 // quicklist2 node container: a listpack
)

// Key is one key of the file.
type Key struct {
	DB       int
	Name     []byte
	Type     byte
	ExpireAt int64 // Unix milliseconds, 0 when the key has no TTL
	// Len is the element count for lists, sets, hashes and sorted sets,
	// the entry count for streams, and 1 for strings and module values.
	Len int64
	// Payload is the type byte followed by the encoded value, exactly as in
	// the file. It is set only when Options.Capture asked for the key; with
	// DumpPayload it becomes a RESTORE argument.
	Payload []byte
}

// Options controls Parse.
type Options struct {
	// Capture reports whether the raw value of a key should be kept in
	// Key.Payload. Nil keeps none.
	Capture func(db int, name []byte) bool
	// OnKey is called for every key after its value is read.
	OnKey func(Key) error
}

// Info summarises a parsed file.
type Info struct {
	Version int
	Aux     map[string]string // repl-id, repl-offset, redis-ver, ctime, ...
	Keys    int64
	Bytes   int64 // length of the file, checksum included
	// Checksum is the stored CRC-64; 0 means the writer had rdbchecksum off
	// (and then nothing could be checked).
	Checksum uint64
}

// Parse reads a whole RDB stream, checks its checksum and that nothing
// follows it. Any structural problem or checksum mismatch returns an error
// wrapping ErrCorrupt.
func Parse(rd io.Reader, opts Options) (*Info, error) {
	r := newReader(rd)
	hdr, err := r.bytes(9)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr[:5], []byte("REDIS")) {
		return nil, fmt.Errorf("header %q is not REDISnnnn: %w", hdr, ErrCorrupt)
	}
	ver, err := strconv.Atoi(string(hdr[5:]))
	if err != nil || ver < 1 || ver > maxVersion {
		return nil, fmt.Errorf("RDB version %q not supported (1..%d): %w", hdr[5:], maxVersion, ErrCorrupt)
	}
	info := &Info{Version: ver, Aux: map[string]string{}}
	db := 0
	var expireAt int64
	for {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case opEOF:
			if err := r.trailer(info); err != nil {
				return nil, err
			}
			return info, nil
		case opAux:
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			v, err := r.str()
			if err != nil {
				return nil, err
			}
			info.Aux[string(k)] = string(v)
		case opSelectDB:
			n, err := r.plainLength()
			if err != nil {
				return nil, err
			}
			db = int(n)
		case opResizeDB:
			for range 2 {
				if _, err := r.plainLength(); err != nil {
					return nil, err
				}
			}
		case opExpireMS:
			v, err := r.uint64LE()
			if err != nil {
				return nil, err
			}
			expireAt = int64(v)
		case opExpireSec:
			p, err := r.bytes(4)
			if err != nil {
				return nil, err
			}
			expireAt = int64(binary.LittleEndian.Uint32(p)) * 1000
		case opIdle:
			if _, err := r.plainLength(); err != nil {
				return nil, err
			}
		case opFreq:
			if _, err := r.byte(); err != nil {
				return nil, err
			}
		case opModuleAux:
			if err := r.moduleAux(); err != nil {
				return nil, err
			}
		case opFunction2:
			if _, err := r.str(); err != nil {
				return nil, err
			}
		case opFunction:
			return nil, r.corrupt("pre-release FUNCTION opcode 0xf6 is not supported")
		default:
			name, err := r.str()
			if err != nil {
				return nil, err
			}
			k := Key{DB: db, Name: name, Type: op, ExpireAt: expireAt}
			expireAt = 0
			if opts.Capture != nil && opts.Capture(db, name) {
				r.capturing, r.capture = true, []byte{op}
			}
			k.Len, err = r.value(op, nil)
			if r.capturing {
				k.Payload, r.capturing, r.capture = r.capture, false, nil
			}
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", name, err)
			}
			info.Keys++
			if opts.OnKey != nil {
				if err := opts.OnKey(k); err != nil {
					return nil, err
				}
			}
		}
	}
}

// trailer reads the checksum after the EOF opcode and checks the end of file.
func (r *reader) trailer(info *Info) error {
	if info.Version >= 5 {
		want := r.crc // CRC of everything up to and including the EOF opcode
		p := make([]byte, 8)
		if _, err := io.ReadFull(r.br, p); err != nil {
			return r.corrupt("checksum missing (truncated file)")
		}
		r.off += 8
		info.Checksum = binary.LittleEndian.Uint64(p)
		if info.Checksum != 0 && info.Checksum != want {
			return r.corrupt("checksum mismatch: file says %016x, content hashes to %016x", info.Checksum, want)
		}
	}
	if _, err := r.br.ReadByte(); err != io.EOF {
		return r.corrupt("data after the end of the RDB")
	}
	info.Bytes = r.off
	return nil
}

// value reads one value of type t. For lists, fn (if not nil) receives every
// element in order.
func (r *reader) value(t byte, fn func([]byte)) (int64, error) {
	switch t {
	case TypeString:
		_, err := r.str()
		return 1, err
	case TypeList, TypeSet:
		n, err := r.plainLength()
		if err != nil {
			return 0, err
		}
		for i := uint64(0); i < n; i++ {
			s, err := r.str()
			if err != nil {
				return 0, err
			}
			if fn != nil && t == TypeList {
				fn(s)
			}
		}
		return int64(n), nil
	case TypeZSet, TypeZSet2, TypeHash:
		n, err := r.plainLength()
		if err != nil {
			return 0, err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.str(); err != nil {
				return 0, err
			}
			switch t {
			case TypeZSet:
				err = r.oldDouble()
			case TypeZSet2:
				_, err = r.bytes(8)
			case TypeHash:
				_, err = r.str()
			}
			if err != nil {
				return 0, err
			}
		}
		return int64(n), nil
	case TypeListZiplist:
		zl, err := r.str()
		if err != nil {
			return 0, err
		}
		n, err := ziplistEntries(zl, fn)
		if err != nil {
			return 0, fmt.Errorf("offset %d: %w", r.off, err)
		}
		return n, nil
	case TypeHashZipmap, TypeSetIntset, TypeZSetZiplist, TypeHashZiplist,
		TypeHashListpack, TypeZSetListpack, TypeSetListpack:
		blob, err := r.str()
		if err != nil {
			return 0, err
		}
		return r.blobLen(t, blob)
	case TypeListQuicklist, TypeListQuicklist2:
		nodes, err := r.plainLength()
		if err != nil {
			return 0, err
		}
		var total int64
		for i := uint64(0); i < nodes; i++ {
			container := uint64(quicklistLP)
			if t == TypeListQuicklist2 {
				if container, err = r.plainLength(); err != nil {
					return 0, err
				}
			}
			blob, err := r.str()
			if err != nil {
				return 0, err
			}
			var n int64
			switch {
			case t == TypeListQuicklist:
				n, err = ziplistEntries(blob, fn)
			case container == quicklistRaw:
				n = 1
				if fn != nil {
					fn(blob)
				}
			case container == quicklistLP:
				n, err = listpackEntries(blob, fn)
			default:
				return 0, r.corrupt("quicklist node container %d", container)
			}
			if err != nil {
				return 0, fmt.Errorf("offset %d: quicklist node %d: %w", r.off, i, err)
			}
			if n == 0 {
				return 0, r.corrupt("quicklist node %d is empty", i)
			}
			total += n
		}
		return total, nil
	case TypeStreamListpacks, TypeStream2, TypeStream3:
		return r.stream(t)
	case TypeModule2:
		if _, err := r.plainLength(); err != nil { // module id
			return 0, err
		}
		return 1, r.moduleValue()
	}
	return 0, r.corrupt("unknown value type %d", t)
}

// blobLen counts the elements of a single-blob small encoding.
func (r *reader) blobLen(t byte, blob []byte) (int64, error) {
	var n int64
	var err error
	switch t {
	case TypeSetIntset:
		if len(blob) < 8 {
			return 0, r.corrupt("intset of %d bytes", len(blob))
		}
		enc := binary.LittleEndian.Uint32(blob)
		n = int64(binary.LittleEndian.Uint32(blob[4:]))
		if (enc != 2 && enc != 4 && enc != 8) || int64(len(blob)) != 8+n*int64(enc) {
			return 0, r.corrupt("intset encoding %d with %d elements in %d bytes", enc, n, len(blob))
		}
		return n, nil
	case TypeHashZipmap:
		if len(blob) < 2 || blob[len(blob)-1] != 0xff {
			return 0, r.corrupt("zipmap without end byte")
		}
		return int64(blob[0]), nil // 254 or more means "count it", good enough for a summary
	case TypeZSetZiplist, TypeHashZiplist:
		n, err = ziplistEntries(blob, nil)
	default:
		n, err = listpackEntries(blob, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("offset %d: %w", r.off, err)
	}
	if t != TypeSetListpack {
		n /= 2 // field/value or member/score pairs
	}
	return n, nil
}

// stream skips a stream value, returning its entry count.
func (r *reader) stream(t byte) (int64, error) {
	lens := func(n int) error {
		for range n {
			if _, err := r.plainLength(); err != nil {
				return err
			}
		}
		return nil
	}
	nodes, err := r.plainLength()
	if err != nil {
		return 0, err
	}
	for i := uint64(0); i < nodes; i++ {
		id, err := r.str()
		if err != nil {
			return 0, err
		}
		if len(id) != 16 {
			return 0, r.corrupt("stream node key of %d bytes", len(id))
		}
		lp, err := r.str()
		if err != nil {
			return 0, err
		}
		if _, err := listpackEntries(lp, nil); err != nil {
			return 0, fmt.Errorf("offset %d: stream listpack: %w", r.off, err)
		}
	}
	length, err := r.plainLength()
	if err != nil {
		return 0, err
	}
	if err := lens(2); err != nil { // last id
		return 0, err
	}
	if t >= TypeStream2 {
		if err := lens(5); err != nil { // first id, max deleted id, entries added
			return 0, err
		}
	}
	groups, err := r.plainLength()
	if err != nil {
		return 0, err
	}
	for i := uint64(0); i < groups; i++ {
		if _, err := r.str(); err != nil {
			return 0, err
		}
		n := 2 // last id
		if t >= TypeStream2 {
			n = 3 // and entries read
		}
		if err := lens(n); err != nil {
			return 0, err
		}
		pel, err := r.plainLength()
		if err != nil {
			return 0, err
		}
		for j := uint64(0); j < pel; j++ {
			if _, err := r.bytes(16 + 8); err != nil { // raw id, delivery time
				return 0, err
			}
			if err := lens(1); err != nil { // delivery count
				return 0, err
			}
		}
		consumers, err := r.plainLength()
		if err != nil {
			return 0, err
		}
		for j := uint64(0); j < consumers; j++ {
			if _, err := r.str(); err != nil {
				return 0, err
			}
			times := uint64(8) // seen time
			if t >= TypeStream3 {
				times = 16 // and active time
			}
			if _, err := r.bytes(times); err != nil {
				return 0, err
			}
			cpel, err := r.plainLength()
			if err != nil {
				return 0, err
			}
			if _, err := r.bytes(16 * cpel); err != nil {
				return 0, err
			}
		}
	}
	return int64(length), nil
}

// moduleValue skips module opcodes up to RDB_MODULE_OPCODE_EOF.
func (r *reader) moduleValue() error {
	for {
		op, err := r.plainLength()
		if err != nil {
			return err
		}
		switch op {
		case 0: // EOF
			return nil
		case 1, 2: // signed, unsigned int
			_, err = r.plainLength()
		case 3: // float
			_, err = r.bytes(4)
		case 4: // double
			_, err = r.bytes(8)
		case 5: // string
			_, err = r.str()
		default:
			return r.corrupt("module opcode %d", op)
		}
		if err != nil {
			return err
		}
	}
}

func (r *reader) moduleAux() error {
	for range 3 { // module id, when opcode, when
		if _, err := r.plainLength(); err != nil {
			return err
		}
	}
	return r.moduleValue()
}

// ListElements decodes a captured list payload (Key.Payload of a list key)
// and calls fn for every element in order. It returns the element count.
func ListElements(payload []byte, fn func([]byte)) (int64, error) {
	if len(payload) == 0 {
		return 0, fmt.Errorf("empty payload: %w", ErrCorrupt)
	}
	switch payload[0] {
	case TypeList, TypeListZiplist, TypeListQuicklist, TypeListQuicklist2:
	default:
		return 0, fmt.Errorf("payload of type %d is not a list: %w", payload[0], ErrCorrupt)
	}
	r := newReader(bytes.NewReader(payload[1:]))
	n, err := r.value(payload[0], fn)
	if err != nil {
		return 0, err
	}
	if _, err := r.br.ReadByte(); err != io.EOF {
		return 0, fmt.Errorf("data after the list value: %w", ErrCorrupt)
	}
	return n, nil
}

// DumpPayload turns a captured value into the argument of RESTORE: the value,
// the 2-byte RDB version and the CRC-64 of both, little-endian. Redis 7.0
// accepts payloads of RDB version 10 or lower.
func DumpPayload(payload []byte, version int) []byte {
	out := make([]byte, 0, len(payload)+10)
	out = append(out, payload...)
	out = binary.LittleEndian.AppendUint16(out, uint16(version))
	return binary.LittleEndian.AppendUint64(out, CRC64(0, out))
}
