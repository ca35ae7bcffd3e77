// Package fetch lays out the input tree of an .isolated manifest in a
// task's folder on a slave: it loads the manifest and its includes, checks
// the whole tree before writing anything, and places every file, verified
// against its digest, from the CAS or through the slave's cache (package
// cache), hardlinked or copied. It reaches the CAS through the CAS
// interface only.
package fetch
