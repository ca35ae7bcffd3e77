package cli

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// extract unpacks zipPath into a folder named like it without ".zip",
// unless that folder exists. It unpacks into a temporary folder renamed at
// the end, so that the folder existing means it is complete. Entries that
// would land outside the folder (absolute, "..") and links are refused and
// reported; the rest is unpacked with its file modes. An archive that
// would unpack to more than max bytes is refused and left zipped: a small
// zip can hold gigabytes of zeros.
func extract(zipPath string, max int64) error {
	dest := strings.TrimSuffix(zipPath, ".zip")
	if _, err := os.Lstat(dest); err == nil {
		return nil
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure names are refused one by one below
		return fmt.Errorf("%s: %w", zipPath, err)
	}
	defer zr.Close()
	// The sizes the archive declares are checked first; the bytes really
	// written are counted too, since a crafted archive may understate them.
	var declared uint64
	for _, f := range zr.File {
		declared += f.UncompressedSize64
		if declared > uint64(max) {
			return tooBig(zipPath, max)
		}
	}
	budget := &unpackBudget{left: max}

	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return fmt.Errorf("%s: %w", zipPath, err)
	}
	defer os.RemoveAll(tmp)                      // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it private
		return fmt.Errorf("%s: %w", zipPath, err)
	}

	var refused []string
	dirModes := map[string]fs.FileMode{}
	for _, f := range zr.File {
		name := filepath.FromSlash(strings.TrimSuffix(f.Name, "/"))
		if !filepath.IsLocal(name) {
			refused = append(refused, fmt.Sprintf("%q (outside the folder)", f.Name))
			continue
		}
		target := filepath.Join(tmp, name)
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("%s: %w", zipPath, err)
			}
			dirModes[target] = mode.Perm()
		case mode.IsRegular():
			if err := writeEntry(f, target, budget); err != nil {
				if budget.left < 0 {
					return tooBig(zipPath, max)
				}
				return fmt.Errorf("%s: %s: %w", zipPath, f.Name, err)
			}
		default:
			refused = append(refused, fmt.Sprintf("%q (a %s, not a file)", f.Name, kind(mode)))
		}
	}
	// Folder modes last: a read-only folder would have refused its files.
	dirs := make([]string, 0, len(dirModes))
	for d := range dirModes {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if perm := dirModes[d]; perm != 0 {
			os.Chmod(d, perm|0o700)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("%s: %w", zipPath, err)
	}
	if len(refused) > 0 {
		return fmt.Errorf("%s: refused %d entries: %s", zipPath, len(refused), strings.Join(refused, ", "))
	}
	return nil
}

func tooBig(zipPath string, max int64) error {
	return fmt.Errorf("%s: not unpacked: it unpacks to more than --max-unpack (%d bytes); it is kept as it is", zipPath, max)
}

// unpackBudget counts down the bytes an archive may still unpack to.
type unpackBudget struct{ left int64 }

var errUnpackBudget = errors.New("over the unpack budget")

func (b *unpackBudget) Write(p []byte) (int, error) {
	b.left -= int64(len(p))
	if b.left < 0 {
		return 0, errUnpackBudget
	}
	return len(p), nil
}

func writeEntry(f *zip.File, target string, budget *unpackBudget) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	perm := f.Mode().Perm()
	if perm == 0 {
		perm = 0o644 // archives written without Unix modes
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(budget, out), rc); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The umask may have narrowed the mode the archive records.
	return os.Chmod(target, perm)
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	}
	return "special file"
}
