package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// The cleaner replaces a group of sealed segments [base, end) with one rewritten segment named
// base. Its files are written as <name>.cleaned, fsynced, then renamed to <name>.swap: the
// rename of the .log file is the commit point. After it the old segments of the group are
// deleted and the .swap files renamed to their final names (over the first old segment's).
// The rewritten segment always ends with a batch whose last offset is end-1 (an empty one if
// need be), so a .swap log says by itself which old segments it replaces.
//
// At open, recoverSwaps finishes or discards what a crash interrupted:
//   - .cleaned files are an unfinished rewrite: deleted (the old segments are intact);
//   - a .log.swap is a committed rewrite: the old segments in (base, end) are deleted and the
//     swap files renamed to their final names;
//   - index .swap files without their .log.swap are left over from before the commit: deleted.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// recoverSwaps finishes or discards interrupted segment rewrites in a partition directory.
func recoverSwaps(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list partition dir %s: %w", dir, err)
	}
	var swaps []int64
	var orphans []string
	changed := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, cleanedSuffix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove unfinished cleaner output %s: %w", name, err)
			}
			log.Warn("removed an unfinished cleaner rewrite (the old segments are intact)", "file", filepath.Join(dir, name))
			changed = true
		case strings.HasSuffix(name, ".log"+swapSuffix):
			base, err := strconv.ParseInt(strings.TrimSuffix(name, ".log"+swapSuffix), 10, 64)
			if err != nil {
				continue
			}
			swaps = append(swaps, base)
		case strings.HasSuffix(name, swapSuffix):
			orphans = append(orphans, name)
		}
	}
	for _, base := range swaps {
		if err := finishSwap(dir, base, log); err != nil {
			return err
		}
		changed = true
	}
	for _, name := range orphans {
		base := strings.SplitN(name, ".", 2)[0]
		if _, err := os.Stat(filepath.Join(dir, base+".log"+swapSuffix)); err == nil {
			continue // renamed by finishSwap already
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove uncommitted cleaner output %s: %w", p, err)
		}
		changed = true
	}
	if changed {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("fsync dir %s: %w: %v", dir, ErrStorage, err)
		}
	}
	return nil
}

// finishSwap completes a committed rewrite whose .log.swap file is for segment base.
func finishSwap(dir string, base int64, log *slog.Logger) error {
	swapLog := segmentPath(dir, base, ".log") + swapSuffix
	f, err := os.Open(swapLog)
	if err != nil {
		return fmt.Errorf("open %s: %w", swapLog, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", swapLog, err)
	}
	end := base
	res := scanBatches(f, 0, st.Size(), func(_ int64, _ []byte, h batch.Header) error {
		end = h.LastOffset() + 1
		return nil
	})
	f.Close()
	if errors.Is(res.err, ErrStorage) {
		return res.err
	}
	if res.err != nil {
		// It was fsynced before the commit; damage since is reported by reads, like any
		// segment's. The old segments it covers up to the damage are still replaced.
		log.Error("committed cleaner output is damaged", "file", swapLog, "position", res.validEnd, "err", res.err)
	}
	bases, err := listSegments(dir)
	if err != nil {
		return err
	}
	for _, b := range bases {
		if b > base && b < end {
			if err := removeSegmentFiles(dir, b); err != nil {
				return err
			}
		}
	}
	for _, ext := range [...]string{".index", ".timeindex", ".log"} {
		p := segmentPath(dir, base, ext)
		if err := os.Rename(p+swapSuffix, p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("finish cleaner swap %s: %w", p, err)
		}
	}
	log.Info("finished a cleaner rewrite interrupted by a restart", "file", segmentPath(dir, base, ".log"), "end_offset", end)
	return nil
}

// commitSwap renames a rewritten segment's .cleaned files to .swap (the .log last: the commit
// point) and fsyncs the directory.
func commitSwap(dir string, base int64) error {
	for _, ext := range [...]string{".index", ".timeindex", ".log"} {
		p := segmentPath(dir, base, ext)
		if err := os.Rename(p+cleanedSuffix, p+swapSuffix); err != nil {
			return fmt.Errorf("commit cleaner output %s: %w: %v", p, ErrStorage, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync dir %s: %w: %v", dir, ErrStorage, err)
	}
	return nil
}

// completeSwap deletes the replaced segments' files (all but the first, whose names the
// rewritten files take) and renames the .swap files to their final names.
func completeSwap(dir string, base int64, replaced []*segment) error {
	for _, s := range replaced {
		if s.base == base {
			continue
		}
		if err := removeSegmentFiles(dir, s.base); err != nil {
			return err
		}
	}
	for _, ext := range [...]string{".index", ".timeindex", ".log"} {
		p := segmentPath(dir, base, ext)
		if err := os.Rename(p+swapSuffix, p); err != nil {
			return fmt.Errorf("finish cleaner swap %s: %w: %v", p, ErrStorage, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync dir %s: %w: %v", dir, ErrStorage, err)
	}
	return nil
}

// removeCleaned deletes an abandoned rewrite's .cleaned files.
func removeCleaned(dir string, base int64) {
	for _, ext := range segmentExts {
		os.Remove(segmentPath(dir, base, ext) + cleanedSuffix)
	}
}
