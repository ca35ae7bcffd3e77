// Package artifacts collects the files a task asked to keep (its artifact
// globs) from the task's folder into one zip archive.
package artifacts

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
)

// DefaultMaxBytes caps the uncompressed size of an archive, as the original
// dist_test did.
const DefaultMaxBytes = 200 << 20

// TooBigName is the only entry of the archive written in place of one whose
// files exceed Options.MaxBytes.
const TooBigName = "_ARCHIVE_TOO_BIG_"

// Options tune Zip.
type Options struct {
	// MaxBytes caps the total uncompressed size of the matched files; zero
	// or less means DefaultMaxBytes.
	MaxBytes int64
}

// Summary tells what Zip found and wrote.
type Summary struct {
	// Files counts the matched regular files (archived unless TooBig).
	// Zero means nothing was written.
	Files int
	// Bytes is their total uncompressed size.
	Bytes int64
	// TooBig is true when the archive holds only TooBigName.
	TooBig bool
	// Skipped lists matched paths not archived: links leading out of root,
	// dangling links, files that could not be read.
	Skipped []string
}

// Zip writes to w a zip of the regular files under root that match any of
// globs (relative to root, doublestar syntax: "**" matches any number of
// folders). Each file appears once, named by its slash-separated path
// relative to root, deflated, with its mode and time. A matched folder adds
// nothing by itself, and "**" does not descend into linked folders. A link
// is archived with the content of its target if the target lies inside root.
//
// When nothing matches, Zip writes nothing and returns Files == 0. When the
// files total more than opt.MaxBytes, the archive holds instead one entry,
// TooBigName, saying so. Files are streamed, never held in memory. On error,
// what was written to w is not a valid archive.
func Zip(ctx context.Context, root string, globs []string, w io.Writer, opt Options) (Summary, error) {
	maxBytes := opt.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	files, skipped, err := match(ctx, root, globs)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Skipped: skipped}
	for _, f := range files {
		sum.Bytes += f.info.Size()
	}
	if len(files) == 0 {
		return sum, nil
	}
	sum.Files = len(files)

	zw := zip.NewWriter(w)
	if sum.Bytes > maxBytes {
		sum.TooBig = true
		if err := writeTooBig(zw, sum.Bytes, maxBytes); err != nil {
			return sum, err
		}
	} else {
		sum.Bytes = 0
		for _, f := range files {
			src, err := os.Open(f.real)
			if err != nil {
				// Unreadable (permissions, removed): the rest is still worth
				// keeping.
				sum.Skipped = append(sum.Skipped, f.name)
				sum.Files--
				continue
			}
			n, err := add(ctx, zw, f, src)
			src.Close()
			if err != nil {
				return sum, err
			}
			sum.Bytes += n
		}
		slices.Sort(sum.Skipped)
	}
	if err := zw.Close(); err != nil {
		return sum, fmt.Errorf("finish artifact archive: %w", err)
	}
	return sum, nil
}

func writeTooBig(zw *zip.Writer, size, limit int64) error {
	ew, err := zw.CreateHeader(&zip.FileHeader{Name: TooBigName, Method: zip.Deflate})
	if err == nil {
		_, err = fmt.Fprintf(ew, "Size of matched uncompressed test artifacts exceeded maximum size (%d bytes > %d bytes)!", size, limit)
	}
	if err != nil {
		return fmt.Errorf("write artifact archive: %w", err)
	}
	return nil
}

// add archives one file, at most the size it had when matched, so that the
// archive keeps within the cap even if the file grows meanwhile.
func add(ctx context.Context, zw *zip.Writer, f file, src io.Reader) (int64, error) {
	hdr, err := zip.FileInfoHeader(f.info)
	if err != nil {
		return 0, fmt.Errorf("archive artifact %s: %w", f.name, err)
	}
	hdr.Name = f.name
	hdr.Method = zip.Deflate
	ew, err := zw.CreateHeader(hdr)
	if err != nil {
		return 0, fmt.Errorf("write artifact archive: %w", err)
	}
	n, err := io.Copy(ew, ctxReader{ctx, io.LimitReader(src, f.info.Size())})
	if err != nil {
		return n, fmt.Errorf("archive artifact %s: %w", f.name, err)
	}
	return n, nil
}

// ctxReader stops a copy once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
