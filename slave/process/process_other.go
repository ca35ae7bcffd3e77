//go:build !linux

package process

import "context"

// MaybeInit returns at once: no init is started off Linux.
func MaybeInit() {}

// CheckNamespaces fails off Linux.
func CheckNamespaces() error { return ErrPlatform }

// Run fails off Linux.
func Run(context.Context, Command) (Result, error) { return Result{}, ErrPlatform }

// AsUser fails off Linux.
func AsUser(User, func() error) error { return ErrPlatform }

// CheckMemoryLimit fails off Linux.
func CheckMemoryLimit() error { return ErrPlatform }

// KillUser fails off Linux.
func KillUser(User) error { return ErrPlatform }
