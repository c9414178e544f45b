package snapshot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-ingest/sluice/services/backup/internal/rdb"
)

// CopyTo copies snapshot name and its sidecars from dir to dst (a second
// destination, e.g. a network mount), each through a synced temp file and a
// rename, sidecars first, and verifies the copy.
func CopyTo(dir, dst, name string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	for _, ext := range []string{".json", ".sha256", ""} {
		if err := copyFile(filepath.Join(dir, name+ext), filepath.Join(dst, name+ext)); err != nil {
			return err
		}
	}
	if err := syncDir(dst); err != nil {
		return err
	}
	if _, err := Verify(filepath.Join(dst, name), rdb.Options{}); err != nil {
		return fmt.Errorf("verify copy: %w", err)
	}
	return nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", out.Name(), err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", out.Name(), err)
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return fmt.Errorf("rename %s to %s: %w", out.Name(), dst, err)
	}
	return nil
}
