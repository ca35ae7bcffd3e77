package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
)

// The SDK's error values are matched through the methods they have, so
// that this package needs no more modules than the SDK's own.
type (
	statusError interface{ HTTPStatusCode() int }
	apiError    interface{ ErrorCode() string }
)

func status(err error) int {
	var se statusError
	if errors.As(err, &se) {
		return se.HTTPStatusCode()
	}
	return 0
}

func code(err error) string {
	var ae apiError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// opError wraps an error of an S3 call on a blob: missing keys become
// blob.ErrNotFound and outages model.ErrUnavailable, so the master answers
// 404 and 503 for them.
func (s *Store) opError(ctx context.Context, what string, err error) error {
	var re readError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%s: %w", what, err)
	case code(err) == "NoSuchBucket":
		return fmt.Errorf("%s: %s does not exist: %w", what, s.where, err)
	case missing(err):
		return fmt.Errorf("%s: %w", what, blob.ErrNotFound)
	case ctx.Err() != nil:
		// The caller gave up; that says nothing about S3.
		return fmt.Errorf("%s: %w", what, err)
	case unavailable(err):
		return fmt.Errorf("%s: %s: %w: %w", what, s.where, model.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", what, s.where, err)
}

// missing reports whether err says the object does not exist.
func missing(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	switch code(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return status(err) == http.StatusNotFound
}

// unavailable reports whether err means S3 could not be reached or did not
// work: no connection, a timeout, a broken connection, or a 5xx answer that
// the SDK's retries did not get past.
func unavailable(err error) bool {
	if st := status(err); st != 0 {
		return st >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// openError turns the failure of Open's bucket check into one line that
// says what is wrong: the endpoint, the credentials or the bucket.
func (s *Store) openError(ctx, check context.Context, err error) error {
	st, c := status(err), code(err)
	cause := brief(err)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("s3: checking %s: %w", s.where, err)
	case c == "NoSuchBucket":
		return fmt.Errorf("s3 %s does not exist (create it, or fix the name): %w", s.where, cause)
	case st == http.StatusForbidden || st == http.StatusUnauthorized || credentialCodes[c]:
		return fmt.Errorf("s3 refused the credentials for %s (check the access key, the secret key and the bucket's permissions): %w",
			s.where, cause)
	case st == http.StatusNotFound:
		return fmt.Errorf("s3 %s does not exist (create it, or fix the name): %w", s.where, cause)
	case st == http.StatusMovedPermanently:
		return fmt.Errorf("s3 %s is in another region%s: %w", s.where, regionHint(err), cause)
	case check.Err() != nil:
		return fmt.Errorf("s3 unreachable for %s: %w: no answer in %v: %w", s.where, model.ErrUnavailable, openTimeout, err)
	case unavailable(err):
		return fmt.Errorf("s3 unreachable for %s: %w: %w", s.where, model.ErrUnavailable, cause)
	}
	return fmt.Errorf("s3: cannot use %s: %w", s.where, err)
}

// brief gives err a short message, the part a user acts on, without the
// SDK's request ids: "NoSuchBucket: The specified bucket does not exist."
// or "dial tcp 127.0.0.1:7070: connect: connection refused".
func brief(err error) error {
	var ae interface {
		ErrorCode() string
		ErrorMessage() string
	}
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		msg := ae.ErrorCode()
		if m := ae.ErrorMessage(); m != "" {
			msg += ": " + m
		}
		if st := status(err); st != 0 {
			msg += fmt.Sprintf(" (HTTP %d)", st)
		}
		return briefError{msg, err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return briefError{oe.Error(), err}
	}
	return err
}

type briefError struct {
	msg string
	err error
}

func (e briefError) Error() string { return e.msg }
func (e briefError) Unwrap() error { return e.err }

// credentialCodes are the error codes of S3 servers for keys they refuse.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"AccessDenied":          true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"XAdminUserNotFound":    true, // versitygw's answer (404) to an unknown access key
}

// regionHint names the bucket's region when S3 tells it.
func regionHint(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.ResponseError != nil && re.Response != nil && re.Response.Response != nil {
		if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			return " (" + r + ")"
		}
	}
	return ""
}
