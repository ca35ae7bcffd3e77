package cas

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/blob/s3"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/testenv"
	"github.com/dist-test/dist_test/isolate"
)

// clock is a settable clock for the collector.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const day = 24 * time.Hour

// Retention of the CAS on the folder store and on S3: a tree a job used
// stays whole, a blob a client was told is there stays, everything else
// goes once no job used it for retention_days.
func TestCASRetention(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) blob.Store{
		"local": func(t *testing.T) blob.Store {
			s, err := local.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"s3": func(t *testing.T) blob.Store {
			srv := testenv.S3(t)
			s, err := s3.Open(context.Background(), s3.Config{Bucket: testenv.NewBucket(t, srv), Endpoint: srv.Endpoint,
				Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	} {
		t.Run(name, func(t *testing.T) { testRetention(t, open(t)) })
	}
}

func testRetention(t *testing.T, store blob.Store) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(serve(store, Options{RetentionDays: 30, Now: clk.now, TempDir: t.TempDir()}))
	defer srv.Close()
	client := NewClient(srv.URL, nil)
	collector := NewService(store, 30, clk.now)
	upload := func(data []byte) string {
		t.Helper()
		d := isolate.HashBytes(isolate.SHA1, data)
		if err := client.Upload(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		return d
	}
	has := func(d string, want []byte) bool {
		t.Helper()
		rc, _, err := client.Open(ctx, d)
		if errors.Is(err, model.ErrNotFound) {
			return false
		} else if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("blob %s holds %q", d, got)
		}
		return true
	}
	sweep := func() int {
		t.Helper()
		n, err := collector.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	file, orphan, promised := []byte("a file of the tree\n"), []byte("nobody uses me\n"), []byte("a client was told I am here\n")
	dFile, dOrphan, dPromised := upload(file), upload(orphan), upload(promised)
	manifest := (&isolate.Isolated{Algo: isolate.SHA1, Command: []string{"true"}, Files: map[string]isolate.File{"f": {Digest: dFile, Size: int64(len(file))}}}).Encode()
	dManifest := upload(manifest)

	// Day 25: the job uses the tree again, a client is told the promised
	// blob is there (its manifest still in the making).
	clk.add(25 * day)
	if missing, err := client.UseManifests(ctx, []string{dManifest}); err != nil || len(missing) != 0 {
		t.Fatalf("UseManifests = %v, %v", missing, err)
	}
	if missing, err := client.Missing(ctx, []string{dPromised}); err != nil || len(missing) != 0 {
		t.Fatalf("Missing = %v, %v", missing, err)
	}
	if n := sweep(); n != 0 {
		t.Fatalf("day 25: %d blobs deleted; nothing is dead yet", n)
	}
	// Day 50: the generation of the uploads is 30 days past its end: it
	// goes, and with it the orphan; what was used or promised on day 25
	// was copied forward.
	clk.add(25 * day)
	if n := sweep(); n == 0 {
		t.Fatal("day 50: nothing deleted")
	}
	if has(dOrphan, orphan) {
		t.Error("the orphan is still there")
	}
	for d, want := range map[string][]byte{dManifest: manifest, dFile: file, dPromised: promised} {
		if !has(d, want) {
			t.Errorf("blob %s, used or promised within 30 days, was deleted", d)
		}
	}
	// A tree whose file is gone is missing as a whole.
	manifest2 := (&isolate.Isolated{Algo: isolate.SHA1, Command: []string{"true"}, Files: map[string]isolate.File{"o": {Digest: dOrphan}}}).Encode()
	d2 := upload(manifest2)
	if missing, err := client.UseManifests(ctx, []string{dManifest, d2}); err != nil || len(missing) != 1 || missing[0] != d2 {
		t.Fatalf("UseManifests with a broken tree = %v, %v; want it missing", missing, err)
	}
	// Day 200 with no use since: everything goes.
	clk.add(130 * day)
	sweep()
	for _, d := range []string{dManifest, dFile, dPromised} {
		if has(d, nil) {
			t.Errorf("blob %s unused for 130 days is still there", d)
		}
	}
}
