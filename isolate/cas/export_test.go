package cas

// MissingRequest lets the tests outside the package write the body of a
// missing-query.
type MissingRequest = missingRequest
