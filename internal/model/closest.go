package model

import "strings"

// Closest returns the candidate nearest to word by edit distance (letters
// inserted, deleted, replaced or two neighbours swapped, case ignored), or
// "" when none is near enough to be a typo of it: at most a third of the
// word's letters, and never more than 3. It names what a misspelt field or
// key most likely meant.
func Closest(word string, candidates []string) string {
	best, bestD := "", 0
	limit := min(3, max(1, len([]rune(word))/3))
	w := []rune(strings.ToLower(word))
	for _, c := range candidates {
		d := editDistance(w, []rune(strings.ToLower(c)))
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b.
func editDistance(a, b []rune) int {
	// Three rows of the dynamic programme: two back for transpositions.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
