//go:build !unix

package main

// lockSQLite does not lock where flock is missing: masters are deployed on
// Linux (the slaves need it), and the client commands built elsewhere do
// not open the database.
func lockSQLite(string) (func(), error) { return func() {}, nil }
