package rdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

func TestCRC64Jones(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0},
		{"123456789", 0xe9c6d914c4b8d9ca}, // the check value in Redis's crc64.c self-test
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := CRC64(0, []byte(tc.in)); got != tc.want {
				t.Fatalf("CRC64(%q) = %016x, want %016x", tc.in, got, tc.want)
			}
			// split input must give the same result (slicing-by-8 vs bytewise)
			if len(tc.in) > 3 {
				if got := CRC64(CRC64(0, []byte(tc.in[:3])), []byte(tc.in[3:])); got != tc.want {
					t.Fatalf("split CRC64 = %016x, want %016x", got, tc.want)
				}
			}
		})
	}
}

// wantQueue rebuilds the data_queue gen.sh wrote.
func wantQueue() []string {
	out := make([]string, 3000)
	for i := range out {
		if i%7 == 0 {
			out[i] = strconv.Itoa(i)
		} else {
			out[i] = fmt.Sprintf("msg-%d", i)
		}
	}
	return out
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file    string
		keys    int64
		lengths map[string]int64 // "db:key" -> elements
	}{
		{"empty.rdb", 0, nil},
		{"types-7.0.rdb", 15, map[string]int64{
			"0:data_queue": 3000, "0:compressed": 2000, "0:plain": 4, "0:negative": 9,
			"0:counter": 1, "0:intset": 4, "0:bigset": 4, "0:smallhash": 2, "0:bighash": 3,
			"0:smallz": 2, "0:bigz": 3, "0:stream": 2, "1:data_queue": 1,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := map[string]int64{}
			var queue []byte
			info, err := Parse(f, Options{
				Capture: func(db int, name []byte) bool { return db == 0 && string(name) == "data_queue" },
				OnKey: func(k Key) error {
					got[fmt.Sprintf("%d:%s", k.DB, k.Name)] = k.Len
					if k.Payload != nil {
						queue = k.Payload
					}
					return nil
				},
			})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if info.Version != 10 || info.Aux["redis-ver"] != "7.0.15" {
				t.Errorf("version %d, redis-ver %q; want 10 and 7.0.15", info.Version, info.Aux["redis-ver"])
			}
			if info.Keys != tc.keys {
				t.Errorf("keys = %d, want %d", info.Keys, tc.keys)
			}
			if info.Checksum == 0 {
				t.Errorf("checksum is 0: the fixture was written with rdbchecksum on")
			}
			for k, want := range tc.lengths {
				if got[k] != want {
					t.Errorf("len %s = %d, want %d", k, got[k], want)
				}
			}
			if tc.lengths["0:data_queue"] == 0 {
				return
			}
			var elems []string
			n, err := ListElements(queue, func(b []byte) { elems = append(elems, string(b)) })
			if err != nil {
				t.Fatalf("ListElements: %v", err)
			}
			want := wantQueue()
			if n != int64(len(want)) || len(elems) != len(want) {
				t.Fatalf("ListElements: n=%d, %d elements; want %d", n, len(elems), len(want))
			}
			for i := range want {
				if elems[i] != want[i] {
					t.Fatalf("element %d = %q, want %q", i, elems[i], want[i])
				}
			}
		})
	}
}

// corruptions derives damaged files from a good one.
func corruptions(good []byte) map[string][]byte {
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 0x20
		return b
	}
	return map[string][]byte{
		"intact":              good,
		"flip-in-header":      flip(3),
		"flip-early":          flip(min(200, len(good)/3)),
		"flip-middle":         flip(len(good) / 2),
		"flip-last-value":     flip(len(good) - 20),
		"flip-in-checksum":    flip(len(good) - 3),
		"truncated-half":      good[:len(good)/2],
		"truncated-checksum":  good[:len(good)-4],
		"truncated-before-ff": good[:len(good)-9],
		"trailing-garbage":    append(bytes.Clone(good), "garbage"...),
	}
}

var keysRead = regexp.MustCompile(`\[info\] (\d+) keys read`)

// TestAgreesWithRedisCheckRDB runs the host's redis-check-rdb and Parse on
// the fixtures and damaged copies of them: both must accept or both refuse,
// and agree on the key count.
func TestAgreesWithRedisCheckRDB(t *testing.T) {
	bin, err := exec.LookPath("redis-check-rdb")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-check-rdb missing in CI: %v", err)
		}
		t.Skipf("redis-check-rdb not installed: %v", err)
	}
	dir := t.TempDir()
	for _, fixture := range []string{"empty.rdb", "types-7.0.rdb"} {
		good, err := os.ReadFile(filepath.Join("testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range corruptions(good) {
			if name == "trailing-garbage" {
				continue // redis-check-rdb ignores bytes after the checksum; Parse refuses them (tested below)
			}
			t.Run(fixture+"/"+name, func(t *testing.T) {
				path := filepath.Join(dir, fixture+"-"+name)
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				out, checkErr := exec.Command(bin, path).CombinedOutput()
				info, parseErr := Parse(bytes.NewReader(data), Options{})
				t.Logf("redis-check-rdb: err=%v; Parse: err=%v", checkErr, parseErr)
				if (checkErr == nil) != (parseErr == nil) {
					t.Fatalf("disagree: redis-check-rdb err=%v, Parse err=%v\n%s", checkErr, parseErr, out)
				}
				if parseErr != nil {
					if !errors.Is(parseErr, ErrCorrupt) {
						t.Fatalf("Parse error %v does not wrap ErrCorrupt", parseErr)
					}
					return
				}
				m := keysRead.FindSubmatch(out)
				if m == nil {
					t.Fatalf("no key count in redis-check-rdb output:\n%s", out)
				}
				if n, _ := strconv.ParseInt(string(m[1]), 10, 64); n != info.Keys {
					t.Fatalf("redis-check-rdb read %d keys, Parse %d", n, info.Keys)
				}
			})
		}
	}
}

func TestTrailingDataRefused(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "types-7.0.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(bytes.NewReader(corruptions(good)["trailing-garbage"]), Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Parse with trailing data: err = %v, want ErrCorrupt", err)
	}
}

// TestDumpPayloadMatchesRedis restores every captured value into a real
// redis-server with RESTORE and checks that DUMP gives back the same bytes
// and that list contents match ListElements.
func TestDumpPayloadMatchesRedis(t *testing.T) {
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	ctx := context.Background()
	c := r.Client()
	defer c.Close()
	f, err := os.Open(filepath.Join("testdata", "types-7.0.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []Key
	info, err := Parse(f, Options{
		Capture: func(db int, _ []byte) bool { return db == 0 },
		OnKey: func(k Key) error {
			if k.DB == 0 {
				keys = append(keys, k)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		t.Run(string(k.Name), func(t *testing.T) {
			payload := DumpPayload(k.Payload, info.Version)
			if err := c.RestoreReplace(ctx, string(k.Name), 0, string(payload)).Err(); err != nil {
				t.Fatalf("RESTORE: %v", err)
			}
			// RESTORE keeps the encoding of compact types, so DUMP must give
			// back the same bytes; hashtable-encoded types are re-encoded by
			// the server's own thresholds, so only their size is compared.
			switch k.Type {
			case TypeSet, TypeHash, TypeZSet2:
			default:
				dump, err := c.Dump(ctx, string(k.Name)).Result()
				if err != nil {
					t.Fatalf("DUMP: %v", err)
				}
				if dump != string(payload) {
					t.Errorf("DUMP differs from DumpPayload (%d vs %d bytes)", len(dump), len(payload))
				}
			}
			var size int64
			switch k.Type {
			case TypeString:
				size = 1
			case TypeSet, TypeSetIntset, TypeSetListpack:
				size, err = c.SCard(ctx, string(k.Name)).Result()
			case TypeHash, TypeHashListpack:
				size, err = c.HLen(ctx, string(k.Name)).Result()
			case TypeZSet2, TypeZSetListpack:
				size, err = c.ZCard(ctx, string(k.Name)).Result()
			case TypeStream2:
				size, err = c.XLen(ctx, string(k.Name)).Result()
			case TypeListQuicklist2:
				size, err = c.LLen(ctx, string(k.Name)).Result()
			default:
				t.Fatalf("type %d not expected in a 7.0 fixture", k.Type)
			}
			if err != nil {
				t.Fatal(err)
			}
			if size != k.Len {
				t.Errorf("server size %d, parsed Len %d", size, k.Len)
			}
			if k.Type != TypeListQuicklist2 {
				return
			}
			want, err := c.LRange(ctx, string(k.Name), 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if _, err := ListElements(k.Payload, func(b []byte) { got = append(got, string(b)) }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || int64(len(want)) != k.Len {
				t.Fatalf("elements differ: parsed %d (Len %d), LRANGE %d", len(got), k.Len, len(want))
			}
		})
	}
}

func TestLZF(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ulen int
		want string
		err  bool
	}{
		{"literal", []byte{2, 'a', 'b', 'c'}, 3, "abc", false},
		{"backref", []byte{0, 'a', 0xa0, 0}, 8, "aaaaaaaa", false},
		{"long-backref", []byte{1, 'a', 'b', 0xe0, 3, 1}, 14, "ababababababab", false},
		{"short", []byte{5, 'a'}, 6, "", true},
		{"bad-ref", []byte{0x20, 9}, 3, "", true},
		{"wrong-ulen", []byte{2, 'a', 'b', 'c'}, 4, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lzfDecompress(tc.in, tc.ulen)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
