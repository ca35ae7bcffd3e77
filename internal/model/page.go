package model

// AttemptPage selects a page of a job's attempts. Pages are keyset pages:
// each starts after the last attempt of the one before, so that a page
// costs the same wherever it is and attempts added meanwhile are not
// skipped or repeated.
type AttemptPage struct {
	States []State // only these states, when not empty
	After  *Cursor // nil: from the start
	Limit  int     // at most this many; 0: all
}

// Cursor is a place among a job's attempts: after attempt Attempt of the
// task at Index.
type Cursor struct {
	Index, Attempt int
}

// CursorOf is the cursor just after a.
func CursorOf(a Attempt) Cursor { return Cursor{Index: a.Index, Attempt: a.Attempt} }
