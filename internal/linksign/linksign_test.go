package linksign

import (
	"bytes"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestSignedLinks(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	const out = "outputs/job.1/task.0/0/stdout"
	q, _ := url.ParseQuery(s.Query(out, now.Add(time.Hour)))

	if err := s.Verify(out, q, now); err != nil {
		t.Errorf("fresh link: %v", err)
	}
	if err := s.Verify(out, q, now.Add(time.Hour+time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("after its expiry: %v, want ErrExpired", err)
	}
	if err := s.Verify("outputs/job.1/task.0/0/stderr", q, now); !errors.Is(err, ErrBadSig) {
		t.Errorf("another output with the same signature: %v, want ErrBadSig", err)
	}
	later := url.Values{"expires": {"1800000000"}, "sig": q["sig"]}
	if err := s.Verify(out, later, now); !errors.Is(err, ErrBadSig) {
		t.Errorf("expiry pushed back: %v, want ErrBadSig", err)
	}
	for _, bad := range []url.Values{
		{"expires": q["expires"], "sig": {"AAAA"}},
		{"expires": {"soon"}, "sig": q["sig"]},
		{"expires": q["expires"], "sig": {"%%%"}},
		{"sig": q["sig"]},
	} {
		if err := s.Verify(out, bad, now); !errors.Is(err, ErrBadSig) {
			t.Errorf("Verify(%v) = %v, want ErrBadSig", bad, err)
		}
	}
	if err := s.Verify(out, url.Values{}, now); !errors.Is(err, ErrUnsigned) {
		t.Errorf("no signature: %v, want ErrUnsigned", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if err := other.Verify(out, q, now); !errors.Is(err, ErrBadSig) {
		t.Errorf("signed with another key: %v, want ErrBadSig", err)
	}
	if _, err := New(key[:16]); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}
