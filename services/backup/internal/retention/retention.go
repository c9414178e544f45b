// Package retention decides which snapshots to keep: the newest N, plus the
// newest snapshot of each of the last D days (UTC), and deletes the rest.
package retention

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sluice-ingest/sluice/services/backup/internal/snapshot"
)

// Policy is the retention rule.
type Policy struct {
	KeepLast  int // the newest KeepLast snapshots are always kept (at least 1)
	DailyDays int // plus the newest of each of the last DailyDays days, today included
}

// Plan splits snapshot file names into those to keep and those to remove.
// Names that do not parse as snapshot names are left out of both.
func (p Policy) Plan(names []string, now time.Time) (keep, remove []string) {
	type snap struct {
		name string
		at   time.Time
	}
	var snaps []snap
	for _, n := range names {
		if !snapshot.IsSnapshot(n) {
			continue
		}
		at, err := snapshot.TimeOf(n)
		if err != nil {
			continue
		}
		snaps = append(snaps, snap{n, at})
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].at.After(snaps[j].at) }) // newest first
	today := now.UTC().Truncate(24 * time.Hour)
	oldestDay := today.AddDate(0, 0, -(p.DailyDays - 1))
	seenDay := map[time.Time]bool{}
	for i, s := range snaps {
		day := s.at.UTC().Truncate(24 * time.Hour)
		daily := p.DailyDays > 0 && !day.Before(oldestDay) && !seenDay[day]
		if daily {
			seenDay[day] = true
		}
		if i < max(p.KeepLast, 1) || daily {
			keep = append(keep, s.name)
		} else {
			remove = append(remove, s.name)
		}
	}
	return keep, remove
}

// Apply removes from dir the snapshots Plan does not keep, with their
// .sha256 and .json files, and sidecars whose snapshot is gone. It returns
// the removed snapshot names.
func (p Policy) Apply(dir string, now time.Time) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	present := map[string]bool{}
	for _, e := range ents {
		names = append(names, e.Name())
		present[e.Name()] = true
	}
	_, remove := p.Plan(names, now)
	var errs []error
	rm := func(name string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, n := range remove {
		rm(n) // the snapshot first: its sidecars alone are cleaned as orphans later
		rm(n + ".sha256")
		rm(n + ".json")
	}
	for _, n := range names {
		for _, ext := range []string{".sha256", ".json"} {
			if base, ok := strings.CutSuffix(n, ext); ok && snapshot.IsSnapshot(base) && !present[base] {
				rm(n)
			}
		}
	}
	return remove, errors.Join(errs...)
}
