// Package s3 keeps the blobs of dist_test in an S3 bucket: AWS S3 or any
// S3-compatible server (MinIO, versitygw).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/dist-test/dist_test/internal/blob"
)

const (
	defaultRegion      = "us-east-1"
	defaultPartSize    = 16 << 20
	defaultConcurrency = 4
	// S3's limits on the parts of a multipart upload (all but the last).
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
	// maxPresignTTL is the longest life S3 allows a presigned link.
	maxPresignTTL = 7 * 24 * time.Hour
	// openTimeout bounds the bucket check of Open, so that an endpoint that
	// swallows packets fails the start instead of hanging it.
	openTimeout = 15 * time.Second
	// abortTimeout bounds the abort of a failed multipart upload, which runs
	// even when the caller's context is gone.
	abortTimeout = 30 * time.Second
)

// Config says where the bucket is and how to use it.
type Config struct {
	Bucket string
	// Prefix is put before every key, so that several dist_test clusters can
	// share a bucket ("cluster1/"). A missing final "/" is added.
	Prefix string
	// Endpoint is the URL of an S3-compatible server
	// ("http://127.0.0.1:7070"); empty means AWS.
	Endpoint string
	// Region defaults to us-east-1.
	Region string
	// PathStyle addresses the bucket as endpoint/bucket/key rather than
	// bucket.endpoint/key, as most self-hosted servers need.
	PathStyle bool
	// AccessKey and SecretKey sign the requests. Both empty: the SDK's
	// default chain (environment, shared config, instance role).
	AccessKey, SecretKey string
	// PartSize is the part size of multipart uploads (default 16 MiB, at
	// least 5 MiB). Blobs of a known size up to PartSize go up in one PUT.
	PartSize int64
	// Concurrency is how many parts of one upload are in flight (default
	// 4). A large upload holds about (Concurrency+2) × PartSize in memory.
	Concurrency int
	// HTTPClient, if set, carries the requests (proxies, TLS settings).
	HTTPClient *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Store keeps blobs as objects <Prefix><key> in one bucket. Each Put is a
// single PUT or a multipart upload, both of which S3 makes visible at once
// and whole, so readers never see part of a blob.
type Store struct {
	client    *awss3.Client
	uploads   *transfermanager.Client
	presigner *awss3.PresignClient
	bucket    string
	prefix    string
	where     string // endpoint and bucket, for messages
	partSize  int64
	log       *slog.Logger
}

var (
	_ blob.Store     = (*Store)(nil)
	_ blob.Presigner = (*Store)(nil)
)

// Open connects to the bucket of cfg and checks that it is reachable, so
// that a wrong endpoint, key or bucket name stops dist_test at start with a
// one-line message that says which.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.log.Info("s3 blob store ready", "where", s.where, "prefix", s.prefix)
	return s, nil
}

// New is Open without the bucket check, for first-time setup: a store
// whose bucket CreateBucket can then create.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := fill(&cfg); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 configuration: %w", err)
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// S3 cannot check the checksum of a blob that went up in parts;
		// the SDK would log that on every Get of one.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Store{
		client: client,
		uploads: transfermanager.New(client, func(o *transfermanager.Options) {
			o.PartSizeBytes = cfg.PartSize
			o.MultipartUploadThreshold = cfg.PartSize
			o.Concurrency = cfg.Concurrency
			o.FailTimeout = abortTimeout
		}),
		presigner: awss3.NewPresignClient(client),
		bucket:    cfg.Bucket,
		prefix:    cfg.Prefix,
		where:     describe(cfg),
		partSize:  cfg.PartSize,
		log:       cfg.Logger,
	}, nil
}

// check asks for the bucket and explains a failure.
func (s *Store) check(ctx context.Context) error {
	check, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	_, err := s.client.HeadBucket(check, &awss3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	if st := status(err); st >= 400 && st < 500 {
		// The answer to a HEAD has no body, so no error code to tell a
		// missing bucket from a refused key (versitygw even answers 404 to
		// an unknown key): a GET of the bucket tells.
		_, lerr := s.client.ListObjectsV2(check, &awss3.ListObjectsV2Input{Bucket: &s.bucket, MaxKeys: aws.Int32(1)})
		if st := status(lerr); st >= 400 && st < 500 {
			err = lerr
		}
	}
	return s.openError(ctx, check, err)
}

// fill checks cfg and sets its defaults.
func fill(cfg *Config) error {
	if cfg.Bucket == "" {
		return errors.New("s3: no bucket given")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3 endpoint %q: want a URL like http://host:port or https://host", cfg.Endpoint)
		}
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return errors.New("s3: give both the access key and the secret key, or neither to use the default credentials")
	}
	if cfg.Prefix != "" {
		cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
		if !blob.ValidKey(cfg.Prefix) {
			return fmt.Errorf("s3 prefix %q: use letters, digits and \"._-/\" without empty, \".\" or \"..\" parts", cfg.Prefix)
		}
		cfg.Prefix += "/"
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	switch {
	case cfg.PartSize == 0:
		cfg.PartSize = defaultPartSize
	case cfg.PartSize < minPartSize || cfg.PartSize > maxPartSize:
		return fmt.Errorf("s3 part size %d: S3 needs 5 MiB to 5 GiB", cfg.PartSize)
	}
	switch {
	case cfg.Concurrency == 0:
		cfg.Concurrency = defaultConcurrency
	case cfg.Concurrency < 0:
		return fmt.Errorf("s3 concurrency %d: want at least 1", cfg.Concurrency)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// describe names the bucket and where it is, for messages.
func describe(cfg Config) string {
	if cfg.Endpoint == "" {
		return fmt.Sprintf("bucket %q on AWS S3 (%s)", cfg.Bucket, cfg.Region)
	}
	return fmt.Sprintf("bucket %q at %s", cfg.Bucket, cfg.Endpoint)
}

// CreateBucket creates the bucket of the store. A bucket that exists and is
// ours already is fine, so it can run at every first-time setup.
func (s *Store) CreateBucket(ctx context.Context) error {
	in := &awss3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if r := s.client.Options().Region; r != defaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(r),
		}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err == nil || errors.As(err, &owned) {
		return nil
	}
	var taken *types.BucketAlreadyExists
	if errors.As(err, &taken) {
		return fmt.Errorf("creating %s: the name belongs to another account: %w", s.where, err)
	}
	return s.opError(ctx, "creating the bucket", err)
}

// key turns a blob key into an object key.
func (s *Store) key(key string) (string, error) {
	if !blob.ValidKey(key) {
		return "", fmt.Errorf("blob: invalid key %q", key)
	}
	return s.prefix + key, nil
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return nil, blob.Info{}, s.opError(ctx, "blob get "+key, err)
	}
	return out.Body, info(out.ContentLength, out.LastModified), nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return blob.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return blob.Info{}, s.opError(ctx, "blob stat "+key, err)
	}
	return info(out.ContentLength, out.LastModified), nil
}

func info(size *int64, mod *time.Time) blob.Info {
	return blob.Info{Size: aws.ToInt64(size), ModTime: aws.ToTime(mod)}
}

// Delete implements blob.Store. S3 answers a delete of a missing key with
// success, as the contract wants.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: &k}); err != nil {
		if err := s.opError(ctx, "blob delete "+key, err); !errors.Is(err, blob.ErrNotFound) {
			return err
		}
	}
	return nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, info blob.Info) error) error {
	full := s.prefix + prefix
	pages := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &full})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s.opError(ctx, "blob list "+prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if err := fn(key, info(o.Size, o.LastModified)); err != nil {
				return err
			}
		}
	}
	return nil
}

// PresignGet implements blob.Presigner: a link that fetches the blob with a
// plain GET, without credentials, for ttl (at most 7 days). It does not
// check that the blob exists; a link to a missing blob answers 404.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	k, err := s.key(key)
	if err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > maxPresignTTL {
		return "", fmt.Errorf("presigning %s: link life %v is outside S3's range of 1s to 7 days", key, ttl)
	}
	req, err := s.presigner.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: &k},
		awss3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presigning %s: %w", key, err)
	}
	return req.URL, nil
}
