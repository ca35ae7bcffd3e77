//go:build race

package main

// Under -race the end-to-end tests build the binary with the race detector
// too, so that the master and slave processes they drive are checked.
func init() { raceBuild = true }
