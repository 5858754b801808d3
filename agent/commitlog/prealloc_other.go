//go:build !linux

package commitlog

import (
	"errors"
	"os"
)

// fallocate is not available here: indexes are grown sparse (Truncate).
func fallocate(*os.File, int64) error { return errors.ErrUnsupported }
