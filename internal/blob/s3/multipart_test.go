package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/testenv"
)

const (
	mib      = 1 << 20
	partSize = 5 * mib
)

// stream returns n reproducible pseudo-random bytes, generated as read.
func stream(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{7}), n)
}

// TestMultipartStream streams 100 MiB of unknown size through a 5 MiB part
// size and reads them back byte for byte.
func TestMultipartStream(t *testing.T) {
	srv := testenv.S3(t)
	bucket, raw := newBucket(t, srv)
	cfg := config(t, srv, bucket)
	cfg.PartSize = partSize
	st := open(t, cfg)
	const size = 100 * mib
	const key = "jobs/j1/artifacts.zip"

	put := sha256.New()
	if err := st.Put(t.Context(), key, io.TeeReader(stream(size), put), -1); err != nil {
		t.Fatalf("Put of 100 MiB: %v", err)
	}
	rc, info, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("reading the blob back: %v", err)
	}
	if n != size || info.Size != size {
		t.Fatalf("read %d bytes, Get reports %d, want %d", n, info.Size, size)
	}
	if !bytes.Equal(got.Sum(nil), put.Sum(nil)) {
		t.Fatalf("sha256 read back %x, put %x", got.Sum(nil), put.Sum(nil))
	}

	// A multipart object's ETag ends in "-<parts>": 100 MiB in 5 MiB parts.
	head, err := raw.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if etag := strings.Trim(aws.ToString(head.ETag), `"`); !strings.HasSuffix(etag, "-20") {
		t.Errorf("ETag %s: want an upload of 20 parts", etag)
	}
	if ct := aws.ToString(head.ContentType); ct != "application/zip" {
		t.Errorf("Content-Type %q, want application/zip", ct)
	}
}

var errBroken = errors.New("upload source broke")

// brokenReader yields its bytes, then fails.
type brokenReader struct{ r io.Reader }

func (b brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

// cancelingReader cancels the Put's context after n bytes, as a client
// that goes away midway does.
type cancelingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestFailedMultipartLeavesNothing checks that an upload that fails after
// several parts went up is aborted: no object, no unfinished upload holding
// the parts, and an old blob under the key is kept.
func TestFailedMultipartLeavesNothing(t *testing.T) {
	srv := testenv.S3(t)
	bucket, raw := newBucket(t, srv)
	cfg := config(t, srv, bucket)
	cfg.PartSize = partSize
	st := open(t, cfg)

	tests := []struct {
		name string
		put  func(ctx context.Context, key string) error
		want error // if not nil, the error Put must wrap
	}{
		{"reader fails at 30 MiB", func(ctx context.Context, key string) error {
			return st.Put(ctx, key, brokenReader{stream(30 * mib)}, -1)
		}, errBroken},
		{"reader shorter than its size", func(ctx context.Context, key string) error {
			return st.Put(ctx, key, stream(30*mib), 40*mib)
		}, nil},
		{"reader longer than its size", func(ctx context.Context, key string) error {
			return st.Put(ctx, key, stream(13*mib), 12*mib)
		}, nil},
		{"context canceled at 12 MiB", func(ctx context.Context, key string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return st.Put(ctx, key, &cancelingReader{r: stream(40 * mib), n: 12 * mib, cancel: cancel}, -1)
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			err := tc.put(ctx, "new.zip")
			if err == nil {
				t.Fatal("Put succeeded, want an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Put: %v, want an error wrapping %v", err, tc.want)
			}
			if errors.Is(err, model.ErrUnavailable) {
				t.Fatalf("Put: %v: a failure of the caller taken for an S3 outage", err)
			}
			if _, err := st.Stat(ctx, "new.zip"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Stat after the failed Put: %v, want ErrNotFound", err)
			}

			old := []byte("old blob")
			if err := st.Put(ctx, "kept.zip", bytes.NewReader(old), int64(len(old))); err != nil {
				t.Fatal(err)
			}
			if err := tc.put(ctx, "kept.zip"); err == nil {
				t.Fatal("Put over a blob succeeded, want an error")
			}
			wantBlob(t, st, "kept.zip", string(old))

			ups, err := raw.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &bucket})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range ups.Uploads {
				t.Errorf("unfinished upload left: key %s, id %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
			}
		})
	}
}

// TestPartSizeForKnownSizes checks where the single PUT ends: a blob of
// exactly the part size goes up whole, one byte more goes up in parts.
func TestPartSizeForKnownSizes(t *testing.T) {
	srv := testenv.S3(t)
	bucket, raw := newBucket(t, srv)
	cfg := config(t, srv, bucket)
	cfg.PartSize = partSize
	st := open(t, cfg)
	for key, size := range map[string]int64{"whole": partSize, "parts": partSize + 1} {
		if err := st.Put(t.Context(), key, stream(size), size); err != nil {
			t.Fatal(err)
		}
		head, err := raw.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		etag := strings.Trim(aws.ToString(head.ETag), `"`)
		if multipart := strings.Contains(etag, "-"); multipart != (key == "parts") || aws.ToInt64(head.ContentLength) != size {
			t.Errorf("%d bytes stored as %d bytes with ETag %s", size, aws.ToInt64(head.ContentLength), etag)
		}
	}
}
