// Package gotest runs a Go module's tests on a dist_test cluster, split by
// test: it builds each package's test binary once, lists its tests, packs
// them into tasks of about a target runtime from the history of earlier
// runs, archives each binary with its package's files, and then reads the
// tasks' test2json output back into one result per test. It never reports
// green by accident: a build that fails, a panic, a binary that exits
// non-zero with no failing test, or a listed test that never ran fails the
// run with the reason.
//
// The cluster itself (archiving, submitting, waiting, fetching logs) is
// behind the Cluster interface, which the dist_test CLI implements.
package gotest
