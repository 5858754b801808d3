package tiering_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/tiering"
	"github.com/samsa-io/samsa/tiering/storetest"
)

func TestFSStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tiering.ObjectStore {
		s, err := tiering.NewFSStore(filepath.Join(t.TempDir(), "objects"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestFSStoreLeavesNoTempFiles: failed puts remove their temporary files, and deletes remove
// the directories they empty.
func TestFSStoreLeavesNoTempFiles(t *testing.T) {
	root := t.TempDir()
	s, err := tiering.NewFSStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a/b/c", strings.NewReader("short"), 100); err == nil {
		t.Fatal("short put: no error")
	}
	if err := s.Put(t.Context(), "a/b/d", strings.NewReader("data"), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), "a/b/d"); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if p != root {
			left = append(left, p)
		}
		return err
	})
	if len(left) != 0 {
		t.Fatalf("left behind: %q", left)
	}
}

// TestFSStoreKeyIsNotADirectory: a key whose path is a directory of other keys, or below an
// object, is refused with an error naming the conflict instead of corrupting anything.
func TestFSStoreKeyIsNotADirectory(t *testing.T) {
	s, err := tiering.NewFSStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	err = s.Put(t.Context(), "a/b/c", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), `"a/b" is an object`) {
		t.Fatalf("Put below an object: %v", err)
	}
	if err := s.Put(t.Context(), "a", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put over a directory of keys: no error")
	}
	infos, err := s.List(t.Context(), "")
	if err != nil || len(infos) != 1 || infos[0].Key != "a/b" {
		t.Fatalf("List = %+v, %v; want only a/b", infos, err)
	}
}
