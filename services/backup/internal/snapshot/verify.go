package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
)

// ErrMismatch marks a snapshot whose content does not match its sidecars.
var ErrMismatch = errors.New("snapshot does not match its checksum or metadata")

type checked struct {
	info   *rdb.Info
	sha256 string
	keyLen int64
}

// checkRDB parses the whole file (structure and CRC-64) and hashes it.
// opts.OnKey, if set, is called too.
func checkRDBWith(path, key string, opts rdb.Options) (*checked, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	res := &checked{}
	onKey := opts.OnKey
	opts.OnKey = func(k rdb.Key) error {
		if k.DB == 0 && string(k.Name) == key {
			res.keyLen = k.Len
		}
		if onKey != nil {
			return onKey(k)
		}
		return nil
	}
	res.info, err = rdb.Parse(io.TeeReader(f, h), opts)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	res.sha256 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}

func checkRDB(path, key string) (*checked, error) { return checkRDBWith(path, key, rdb.Options{}) }

// Verified is the result of Verify.
type Verified struct {
	Meta Meta     // from the .json sidecar
	Info rdb.Info // from parsing the file
}

// Verify checks a snapshot file against its .sha256 and .json sidecars and
// parses it completely (structure, CRC-64, the queue's length). opts lets
// the caller capture values in the same pass (restore does). A missing
// sidecar, a hash or length mismatch, or a parse error is an error.
func Verify(path string, opts rdb.Options) (*Verified, error) {
	sumLine, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return nil, fmt.Errorf("read checksum file: %w", err)
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(sumLine)), " ")
	js, err := os.ReadFile(path + ".json")
	if err != nil {
		return nil, fmt.Errorf("read metadata file: %w", err)
	}
	var v Verified
	if err := json.Unmarshal(js, &v.Meta); err != nil {
		return nil, fmt.Errorf("decode %s.json: %w", path, err)
	}
	// Hash first: a file that is not what was written is refused as such,
	// whatever its damage does to the parse.
	got, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("verify %s: sha256 %s, %s.sha256 says %s: %w", path, got, path, want, ErrMismatch)
	}
	res, err := checkRDBWith(path, v.Meta.Key, opts)
	if err != nil {
		return nil, err
	}
	v.Info = *res.info
	var errs []error
	if res.sha256 != want {
		errs = append(errs, fmt.Errorf("sha256 %s, %s.sha256 says %s: %w", res.sha256, path, want, ErrMismatch))
	}
	if res.sha256 != v.Meta.SHA256 {
		errs = append(errs, fmt.Errorf("sha256 %s, metadata says %s: %w", res.sha256, v.Meta.SHA256, ErrMismatch))
	}
	if res.keyLen != v.Meta.KeyLength {
		errs = append(errs, fmt.Errorf("%s has %d elements, metadata says %d: %w", v.Meta.Key, res.keyLen, v.Meta.KeyLength, ErrMismatch))
	}
	if res.info.Bytes != v.Meta.SizeBytes {
		errs = append(errs, fmt.Errorf("size %d, metadata says %d: %w", res.info.Bytes, v.Meta.SizeBytes, ErrMismatch))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("verify %s: %w", path, err)
	}
	return &v, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Available is the result of VerifyAvailable: the file parsed, and what
// could be compared.
type Available struct {
	Info      rdb.Info
	SHA256    string // of the file
	Key       string // the queue: Meta.Key with metadata, else the key asked for
	KeyLength int64  // its elements in the file
	// Meta is the .json sidecar; nil without one (nothing compared to it).
	Meta *Meta
	// ChecksumFile is true when a .sha256 sidecar was there and matched.
	ChecksumFile bool
}

// VerifyAvailable checks what can be checked of path, which need not be a
// snapshot of this service (a dump.rdb copied from a Redis data directory
// has no sidecars): it parses the file completely (structure, CRC-64,
// key's length) and compares it with the .sha256 and .json sidecars that
// exist. A sidecar that exists but cannot be read or decoded, a mismatch,
// or a parse error is an error. With both sidecars it is Verify.
func VerifyAvailable(path, key string, opts rdb.Options) (*Available, error) {
	sumLine, sumErr := os.ReadFile(path + ".sha256")
	js, jsErr := os.ReadFile(path + ".json")
	for _, err := range []error{sumErr, jsErr} {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("verify %s: %w", path, err)
		}
	}
	if sumErr == nil && jsErr == nil {
		v, err := Verify(path, opts)
		if err != nil {
			return nil, err
		}
		return &Available{Info: v.Info, SHA256: v.Meta.SHA256, Key: v.Meta.Key, KeyLength: v.Meta.KeyLength,
			Meta: &v.Meta, ChecksumFile: true}, nil
	}
	a := &Available{Key: key}
	if jsErr == nil {
		a.Meta = &Meta{}
		if err := json.Unmarshal(js, a.Meta); err != nil {
			return nil, fmt.Errorf("decode %s.json: %w", path, err)
		}
		a.Key = a.Meta.Key
	}
	res, err := checkRDBWith(path, a.Key, opts)
	if err != nil {
		return nil, err
	}
	a.Info, a.SHA256, a.KeyLength = *res.info, res.sha256, res.keyLen
	var errs []error
	if sumErr == nil {
		want, _, _ := strings.Cut(strings.TrimSpace(string(sumLine)), " ")
		if res.sha256 != want {
			errs = append(errs, fmt.Errorf("sha256 %s, %s.sha256 says %s: %w", res.sha256, path, want, ErrMismatch))
		}
		a.ChecksumFile = true
	}
	if m := a.Meta; m != nil {
		if res.sha256 != m.SHA256 {
			errs = append(errs, fmt.Errorf("sha256 %s, metadata says %s: %w", res.sha256, m.SHA256, ErrMismatch))
		}
		if res.keyLen != m.KeyLength {
			errs = append(errs, fmt.Errorf("%s has %d elements, metadata says %d: %w", m.Key, res.keyLen, m.KeyLength, ErrMismatch))
		}
		if res.info.Bytes != m.SizeBytes {
			errs = append(errs, fmt.Errorf("size %d, metadata says %d: %w", res.info.Bytes, m.SizeBytes, ErrMismatch))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("verify %s: %w", path, err)
	}
	return a, nil
}
