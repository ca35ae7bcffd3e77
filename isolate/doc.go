// Package isolate is the format of dist_test's task inputs, as luci's
// "isolate" writes them: digests (sha-1, sha-256) and the .isolated
// manifest a task runs from (its files by digest, its command, and the
// checks that keep a tree inside its folder). It does no I/O beyond
// hashing a file.
//
// The rest of the inputs' life lives in the packages below it:
// isolatefile reads the .isolate files users write, archive turns them
// into manifests and uploads them, cas serves and stores the blobs (and
// holds its client), fetch lays a manifest's tree out on a slave, and
// cache is the slave's store of blobs that fetch goes through.
package isolate
