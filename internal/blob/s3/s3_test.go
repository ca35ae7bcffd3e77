package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/blobtest"
	"github.com/dist-test/dist_test/internal/blob/s3"
	"github.com/dist-test/dist_test/internal/testenv"
)

// config points at bucket on the test server, logging into the test's
// output.
func config(t *testing.T, srv testenv.S3Server, bucket string) s3.Config {
	return s3.Config{
		Bucket:    bucket,
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		PathStyle: true,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}

// newBucket creates a bucket of the test's own, removed with all it holds
// when the test ends, and returns a raw client to look into it.
func newBucket(t *testing.T, srv testenv.S3Server) (string, *awss3.Client) {
	t.Helper()
	bucket := testenv.Bucket()
	st, err := s3.New(t.Context(), config(t, srv, bucket))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBucket(t.Context()); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	client := st.S3Client()
	t.Cleanup(func() { removeBucket(t, client, bucket) })
	return bucket, client
}

// removeBucket aborts the bucket's unfinished uploads, deletes its objects
// and then the bucket.
func removeBucket(t *testing.T, c *awss3.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ups, err := c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &bucket})
	if err == nil {
		for _, u := range ups.Uploads {
			c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	pages := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Errorf("cleanup: listing %s: %v", bucket, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
				t.Errorf("cleanup: deleting %s: %v", aws.ToString(o.Key), err)
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Errorf("cleanup: deleting bucket %s: %v", bucket, err)
	}
}

func open(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	st, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

// TestConformance runs the blob suite with each subtest under a prefix of
// its own in one bucket, which is quicker than a bucket each. The part size
// is S3's smallest, so that the suite's 20 MiB blobs go up in parts.
func TestConformance(t *testing.T) {
	srv := testenv.S3(t)
	bucket, _ := newBucket(t, srv)
	n := 0
	blobtest.Run(t, func(t *testing.T) blob.Store {
		n++
		cfg := config(t, srv, bucket)
		cfg.Prefix = fmt.Sprintf("conformance-%d/", n)
		cfg.PartSize = 5 << 20
		return open(t, cfg)
	})
}

func TestCreateBucketIsIdempotent(t *testing.T) {
	srv := testenv.S3(t)
	bucket, _ := newBucket(t, srv)
	st := open(t, config(t, srv, bucket))
	if err := st.CreateBucket(t.Context()); err != nil {
		t.Fatalf("CreateBucket of an existing bucket of ours: %v", err)
	}
}

func TestPrefixIsolation(t *testing.T) {
	srv := testenv.S3(t)
	bucket, raw := newBucket(t, srv)
	withPrefix := func(p string) *s3.Store {
		cfg := config(t, srv, bucket)
		cfg.Prefix = p
		return open(t, cfg)
	}
	a, b, root := withPrefix("team-a"), withPrefix("team-b/"), withPrefix("")
	ctx := t.Context()
	for st, data := range map[*s3.Store]string{a: "from a", b: "from b"} {
		if err := st.Put(ctx, "k", strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	wantBlob(t, a, "k", "from a")
	wantBlob(t, b, "k", "from b")
	// The prefix is a folder of the bucket: "team-a" became "team-a/".
	wantBlob(t, root, "team-a/k", "from a")
	wantBlob(t, root, "team-b/k", "from b")
	if _, err := root.Stat(ctx, "k"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(k) without prefix = %v, want ErrNotFound", err)
	}

	if err := a.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stat(ctx, "k"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after Delete = %v, want ErrNotFound", err)
	}
	wantBlob(t, b, "k", "from b")
	out, err := raw.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if strings.Join(keys, " ") != "team-b/k" {
		t.Fatalf("bucket holds %q, want only team-b/k", keys)
	}
}

func wantBlob(t *testing.T, st *s3.Store, key, want string) {
	t.Helper()
	rc, info, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if string(got) != want || info.Size != int64(len(want)) {
		t.Fatalf("Get(%q) = %q (size %d), want %q", key, got, info.Size, want)
	}
}

// TestContentType checks the type S3 stores, which browsers following a
// presigned link are given.
func TestContentType(t *testing.T) {
	srv := testenv.S3(t)
	bucket, raw := newBucket(t, srv)
	cfg := config(t, srv, bucket)
	cfg.Prefix = "p"
	st := open(t, cfg)
	for key, want := range map[string]string{
		"job/artifacts.zip": "application/zip",
		"task.stdout":       "text/plain; charset=utf-8",
		"task.stderr":       "text/plain; charset=utf-8",
		"cas/ab/abcdef":     "application/octet-stream",
		"zip":               "application/octet-stream",
	} {
		if err := st.Put(t.Context(), key, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		head, err := raw.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: aws.String("p/" + key)})
		if err != nil {
			t.Fatalf("HeadObject(p/%s): %v", key, err)
		}
		if got := aws.ToString(head.ContentType); got != want {
			t.Errorf("%s has Content-Type %q, want %q", key, got, want)
		}
	}
}

func TestPresignedLinks(t *testing.T) {
	srv := testenv.S3(t)
	bucket, _ := newBucket(t, srv)
	cfg := config(t, srv, bucket)
	cfg.Prefix = "links/"
	st := open(t, cfg)
	ctx := t.Context()
	log := []byte("line 1\nline 2\n")
	if err := st.Put(ctx, "job/1/task.stdout", bytes.NewReader(log), int64(len(log))); err != nil {
		t.Fatal(err)
	}

	t.Run("fetched with plain GET", func(t *testing.T) {
		link, err := st.PresignGet(ctx, "job/1/task.stdout", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(link, srv.Endpoint+"/"+bucket+"/links/job/1/task.stdout?") {
			t.Fatalf("link %s is not path-style under %s", link, srv.Endpoint)
		}
		status, body, typ := fetch(t, link)
		if status != http.StatusOK || !bytes.Equal(body, log) || typ != "text/plain; charset=utf-8" {
			t.Fatalf("GET of the link: %d, %q, Content-Type %q; want 200, %q, text/plain", status, body, typ, log)
		}
	})
	t.Run("missing blob", func(t *testing.T) {
		link, err := st.PresignGet(ctx, "job/1/none", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if status, _, _ := fetch(t, link); status != http.StatusNotFound {
			t.Fatalf("GET of a link to a missing blob: %d, want 404", status)
		}
	})
	t.Run("expired", func(t *testing.T) {
		link, err := st.PresignGet(ctx, "job/1/task.stdout", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// A real server's clock: no virtual time here. S3 signs whole
		// seconds, so two seconds are past the link's life whatever the
		// rounding.
		time.Sleep(2 * time.Second)
		if status, body, _ := fetch(t, link); status != http.StatusForbidden {
			t.Fatalf("GET of an expired link: %d %q, want 403", status, body)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		for _, tc := range []struct {
			key string
			ttl time.Duration
		}{
			{"job/1/task.stdout", 0},
			{"job/1/task.stdout", -time.Minute},
			{"job/1/task.stdout", 7*24*time.Hour + time.Second},
			{"../escape", time.Minute},
		} {
			if link, err := st.PresignGet(ctx, tc.key, tc.ttl); err == nil {
				t.Errorf("PresignGet(%q, %v) = %s, want an error", tc.key, tc.ttl, link)
			}
		}
	})
}

func fetch(t *testing.T, link string) (status int, body []byte, contentType string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header.Get("Content-Type")
}
