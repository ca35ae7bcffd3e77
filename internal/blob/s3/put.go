package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Put implements blob.Store. A blob of known size up to the part size is
// read into memory and sent in one PUT; anything larger, or of unknown
// size, streams as a multipart upload that holds only the parts in flight.
// Either way S3 shows the object only once it is complete, and an upload
// that fails (a broken reader, a wrong size, a canceled context) is aborted
// before Put returns, so it leaves no object and no stored parts.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if size < 0 {
		size = -1
	}
	body := &checkedReader{ctx: ctx, r: r, want: size}
	if size >= 0 && size <= s.partSize {
		err = s.putSmall(ctx, k, body, size)
	} else {
		err = s.putLarge(ctx, k, body, size)
	}
	if err != nil {
		return s.opError(ctx, "blob put "+key, err)
	}
	return nil
}

// putSmall sends a blob of known size in one PutObject. It reads the whole
// blob first: the request must be signed over its bytes (or their
// checksum), and a short or long reader is caught before anything is sent.
func (s *Store) putSmall(ctx context.Context, k string, body *checkedReader, size int64) error {
	// One byte more than expected, so that a reader with extra bytes is
	// caught by checkedReader rather than cut short unnoticed.
	buf := make([]byte, size+1)
	n, err := io.ReadFull(body, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// checkedReader reports EOF only after exactly size bytes.
	case err != nil:
		return err
	default:
		return readError{fmt.Errorf("more than the %d bytes expected", size)}
	}
	_, err = s.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &k,
		Body:          bytes.NewReader(buf[:n]),
		ContentLength: aws.Int64(int64(n)),
		ContentType:   aws.String(contentType(k)),
	})
	return err
}

// putLarge streams a blob through the transfer manager, which uploads
// Concurrency parts at a time and aborts the upload if any step fails,
// including a read error from body; a blob that turns out to be smaller
// than one part still goes up in a single PutObject.
func (s *Store) putLarge(ctx context.Context, k string, body *checkedReader, size int64) error {
	in := &transfermanager.UploadObjectInput{
		Bucket:      &s.bucket,
		Key:         &k,
		Body:        body,
		ContentType: aws.String(contentType(k)),
	}
	if size > 0 {
		// Lets the transfer manager grow the part size for blobs that would
		// need more than S3's 10,000 parts.
		in.ContentLength = aws.Int64(size)
	}
	_, err := s.uploads.UploadObject(ctx, in)
	var mpu transfermanager.MultipartUploadError
	if errors.As(err, &mpu) {
		s.log.Warn("s3 multipart upload failed and was aborted", "bucket", s.bucket, "key", k,
			"upload_id", mpu.UploadID(), "err", err)
	}
	return err
}

// contentType is what a browser following a presigned link is told.
func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".zip"):
		return "application/zip"
	case strings.HasSuffix(key, ".stdout"), strings.HasSuffix(key, ".stderr"):
		return "text/plain; charset=utf-8"
	default:
		return "application/octet-stream"
	}
}

// readError is a failure of the caller's reader (or its context), told
// apart from S3's failures so that it is never taken for an outage.
type readError struct{ err error }

func (e readError) Error() string { return "reading the blob: " + e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// checkedReader reads the blob for Put. It stops when ctx ends and turns a
// length other than want (unless -1) into an error, so that the upload
// fails, and is aborted, instead of storing the wrong bytes.
type checkedReader struct {
	ctx  context.Context
	r    io.Reader
	want int64 // -1: unknown
	n    int64
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, readError{err}
	}
	if c.want >= 0 && int64(len(p)) > c.want-c.n+1 {
		// Ask for at most one byte past the end: enough to see a reader
		// that is too long without reading far beyond.
		p = p[:c.want-c.n+1]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	switch {
	case c.want >= 0 && c.n > c.want:
		return n, readError{fmt.Errorf("more than the %d bytes expected", c.want)}
	case err == io.EOF:
		if c.want >= 0 && c.n != c.want {
			return n, readError{fmt.Errorf("got %d bytes, expected %d", c.n, c.want)}
		}
		return n, io.EOF
	case err != nil:
		return n, readError{err}
	}
	return n, nil
}
