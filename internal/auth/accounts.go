package auth

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Realm is the HTTP Digest realm of every dist_test server. An HA1 hash in
// [dist_test] accounts is computed with it, so it never changes.
const Realm = "dist_test"

// HA1 is the hash an account may be stored as: hex MD5 of
// "user:realm:password", as RFC 2617 and htdigest define it.
func HA1(user, password string) string {
	sum := md5.Sum([]byte(user + ":" + Realm + ":" + password))
	return hex.EncodeToString(sum[:])
}

// isHA1 tells a stored hash from a password: 32 hex digits.
func isHA1(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// CheckUser refuses names that cannot travel in a Digest header or that
// would make "user:realm:password" ambiguous.
func CheckUser(name string) error {
	if name == "" {
		return fmt.Errorf("empty user name")
	}
	if len(name) > 200 {
		return fmt.Errorf("user name %.20q... is longer than 200 bytes", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == ':' || c == '"' || c == '\\' {
			return fmt.Errorf("user name %q: no control characters, ':', '\"' or '\\'", name)
		}
	}
	return nil
}

// accounts maps user names to HA1 hashes.
type accounts map[string]string

// parseAccounts turns user → password-or-HA1 into user → HA1 and lists
// the users whose password is written in plain text, sorted.
func parseAccounts(in map[string]string, key string) (accounts, []string, error) {
	out := make(accounts, len(in))
	var plain []string
	for user, secret := range in {
		if err := CheckUser(user); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key, err)
		}
		switch {
		case secret == "":
			return nil, nil, fmt.Errorf("%s: user %q has an empty password", key, user)
		case isHA1(secret):
			out[user] = strings.ToLower(secret)
		default:
			out[user] = HA1(user, secret)
			plain = append(plain, user)
		}
	}
	sort.Strings(plain)
	return out, plain, nil
}
