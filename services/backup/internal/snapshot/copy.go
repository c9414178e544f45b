package snapshot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
)

// CopyTo copies snapshot name and its sidecars from dir to dst (a second
// destination, e.g. a network mount). It copies the three files to synced
// temp files in dst, verifies the temp copy (what is on dst's disk, against
// the copied sidecars), and only then renames them into place, sidecars
// first: a name.rdb in dst only ever exists verified and with its sidecars,
// like in dir. When the copy or the verification fails it removes the temp
// files and leaves dst as it was (a good copy already there stays).
func CopyTo(dir, dst, name string) (err error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	// The snapshot's temp name; its sidecars' are this plus their extension,
	// which is how Verify finds them.
	f, err := os.CreateTemp(dst, tmpPrefix+"*-"+name)
	if err != nil {
		return fmt.Errorf("create temp file for %s in %s: %w", name, dst, err)
	}
	tmp := f.Name()
	f.Close()
	exts := []string{".json", ".sha256", ""} // the order of the renames
	defer func() {
		if err != nil {
			for _, ext := range exts {
				os.Remove(tmp + ext)
			}
		}
	}()
	for _, ext := range exts {
		if err := copyFile(filepath.Join(dir, name+ext), tmp+ext); err != nil {
			return err
		}
	}
	if _, err := Verify(tmp, rdb.Options{}); err != nil {
		return fmt.Errorf("verify copy of %s in %s: %w", name, dst, err)
	}
	var renamed []string
	for _, ext := range exts {
		final := filepath.Join(dst, name+ext)
		if err := os.Rename(tmp+ext, final); err != nil {
			for _, p := range renamed {
				os.Remove(p) // sidecars without their snapshot
			}
			return fmt.Errorf("rename %s to %s: %w", tmp+ext, final, err)
		}
		renamed = append(renamed, final)
	}
	return syncDir(dst)
}

// copyFile copies src to dst (created or truncated) and fsyncs it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", dst, cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dst, err)
	}
	return nil
}
