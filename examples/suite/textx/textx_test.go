package textx

import "testing"

func TestReverse(t *testing.T) {
	if Reverse("héllo") != "olléh" {
		t.Fatalf("Reverse = %q", Reverse("héllo"))
	}
}

func TestIsPalindrome(t *testing.T) {
	if !IsPalindrome("A man, a plan, a canal: Panama") || IsPalindrome("dist_test") {
		t.Fatal("IsPalindrome is wrong")
	}
}

func TestWordCount(t *testing.T) {
	got := WordCount("the cat and the hat.")
	if got["the"] != 2 || got["hat"] != 1 {
		t.Fatalf("WordCount = %v", got)
	}
}

func TestTitle(t *testing.T) {
	if Title("run the tests") != "Run The Tests" {
		t.Fatalf("Title = %q", Title("run the tests"))
	}
}

func TestTruncate(t *testing.T) {
	if Truncate("distributed", 4) != "dist…" || Truncate("go", 4) != "go" {
		t.Fatal("Truncate is wrong")
	}
}

func TestVowels(t *testing.T) {
	if Vowels("Distributed Testing") != 6 {
		t.Fatalf("Vowels = %d", Vowels("Distributed Testing"))
	}
}

func TestTitleEmpty(t *testing.T) {
	if Title("") != "" {
		t.Fatal("Title of nothing should be nothing")
	}
}
