// Package archive puts task inputs into the CAS, as luci's `isolate
// archive` and `isolate batcharchive` do: it reads .isolate files (through
// isolatefile), walks the trees they list, hashes each distinct file once,
// asks the CAS which blobs it lacks, uploads those, then each tree's
// .isolated manifest, and returns the manifests' digests. It reaches the
// CAS through the CAS interface only.
package archive
