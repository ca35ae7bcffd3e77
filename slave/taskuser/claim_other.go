//go:build !linux

package taskuser

import "github.com/dist-test/dist_test/slave/process"

// Task users, and the slave that needs them, are Linux's only: a claim
// fails at its first step.

func lockDir(string) error                       { return process.ErrPlatform }
func (c *Claim) take(string, User) (bool, error) { return false, process.ErrPlatform }
func (o Options) ensure(string) (User, error)    { return User{}, process.ErrPlatform }
