package slave

import (
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
)

// The slave's retry loops. Those that try until they succeed take full
// jitter: a fleet that lost the master or the queue at the same moment
// comes back spread out rather than in step. Uploads give up after
// Config.UploadAttempts answers of trouble, a budget meant to outlast a
// short outage of the blob store: their delays keep at least half of their
// length, so that the tries span about the time they always did.
var (
	queueRetry    = backoff.Policy{First: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: 1}
	registerRetry = backoff.Policy{First: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: 1}
	finishRetry   = backoff.Policy{First: 200 * time.Millisecond, Max: 10 * time.Second, Jitter: 1}
	uploadRetry   = backoff.Policy{First: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.5}
)
