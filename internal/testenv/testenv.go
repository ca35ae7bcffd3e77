// Package testenv finds the services that the tests of the production
// backends run against: MariaDB/MySQL, beanstalkd and an S3 server. In CI
// (CI=true) a test whose service is missing fails; elsewhere it is skipped
// with a message saying how to start the services (.ci/services).
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-sql-driver/mysql"

	"github.com/dist-test/dist_test/internal/model"
)

// CI reports whether the tests run in CI, where no test may skip for want
// of a service.
func CI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// missing fails or skips t because service is not reachable.
func missing(t testing.TB, service string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not reachable (%v); start the test services with: eval \"$(.ci/services)\"", service, err)
	if CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func reachable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// MySQL returns the DSN of a new, empty database on the test server
// ($DIST_TEST_MYSQL, default root@tcp(127.0.0.1:3306)/), dropped when the
// test ends.
func MySQL(t testing.TB) string {
	t.Helper()
	base := env("DIST_TEST_MYSQL", "root@tcp(127.0.0.1:3306)/")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("DIST_TEST_MYSQL: %v", err)
	}
	if err := reachable(cfg.Addr); err != nil {
		missing(t, "MySQL at "+cfg.Addr, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "dist_test_t_" + model.NewToken()[:12]
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		missing(t, "MySQL at "+cfg.Addr, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			db.Exec("DROP DATABASE " + name)
			db.Close()
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// Beanstalk returns the address of the test beanstalkd
// ($DIST_TEST_BEANSTALK, default 127.0.0.1:11300) and a tube name of the
// test's own.
func Beanstalk(t testing.TB) (addr, tube string) {
	t.Helper()
	addr = env("DIST_TEST_BEANSTALK", "127.0.0.1:11300")
	if err := reachable(addr); err != nil {
		missing(t, "beanstalkd at "+addr, err)
	}
	return addr, "t-" + model.NewToken()[:16]
}

// S3Server is where the test S3 server is and how to sign in.
type S3Server struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
}

// S3 returns the test S3 server ($DIST_TEST_S3_ENDPOINT, default
// http://127.0.0.1:7070, with $DIST_TEST_S3_ACCESS_KEY and
// $DIST_TEST_S3_SECRET_KEY).
func S3(t testing.TB) S3Server {
	t.Helper()
	s := S3Server{
		Endpoint:  env("DIST_TEST_S3_ENDPOINT", "http://127.0.0.1:7070"),
		AccessKey: env("DIST_TEST_S3_ACCESS_KEY", "dist_test"),
		SecretKey: env("DIST_TEST_S3_SECRET_KEY", "dist_test_secret"),
		Region:    "us-east-1",
	}
	host := strings.TrimPrefix(strings.TrimPrefix(s.Endpoint, "http://"), "https://")
	if _, _, err := net.SplitHostPort(host); err != nil {
		host += ":80"
	}
	if err := reachable(host); err != nil {
		missing(t, "the S3 server at "+s.Endpoint, err)
	}
	return s
}

// Bucket returns a bucket name of the test's own (S3 names: lowercase,
// digits and hyphens, 3 to 63 characters).
func Bucket() string { return "dist-test-t-" + model.NewToken()[:16] }

// NewBucket creates a bucket of the test's own on the test S3 server and
// empties and deletes it when the test ends.
func NewBucket(t testing.TB, s S3Server) string {
	t.Helper()
	ctx := context.Background()
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint), Region: s.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	name := Bucket()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		missing(t, "the S3 server at "+s.Endpoint, err)
	}
	t.Cleanup(func() {
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range page.Contents {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	return name
}
