// Package cas is the content-addressed store of task inputs over HTTP,
// both ends of it: the handler an isolate server (or a master) mounts
// under protocol.PathCAS, which verifies every upload against its digest
// and keeps blobs in a blob.Store in generations that retention sweeps
// whole (gens.go); and the Client that archive and the slave's fetch use.
// Blobs travel gzip-compressed both ways where that pays (gzip.go).
package cas
