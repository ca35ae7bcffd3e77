package mathx

import (
	"errors"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	if Add(2, 3) != 5 {
		t.Fatal("2+3 != 5")
	}
}

func TestSub(t *testing.T) {
	if Sub(2, 3) != -1 {
		t.Fatal("2-3 != -1")
	}
}

func TestMul(t *testing.T) {
	if Mul(-4, 3) != -12 {
		t.Fatal("-4*3 != -12")
	}
}

func TestDiv(t *testing.T) {
	if q, err := Div(7, 2); err != nil || q != 3 {
		t.Fatalf("Div(7, 2) = %d, %v", q, err)
	}
	if _, err := Div(1, 0); !errors.Is(err, ErrDivByZero) {
		t.Fatalf("Div(1, 0) error = %v", err)
	}
}

func TestAbs(t *testing.T) {
	for _, c := range [][2]int{{-3, 3}, {0, 0}, {5, 5}} {
		if Abs(c[0]) != c[1] {
			t.Errorf("Abs(%d) = %d", c[0], Abs(c[0]))
		}
	}
}

func TestGcd(t *testing.T) {
	if Gcd(84, 36) != 12 {
		t.Fatal("gcd(84, 36) != 12")
	}
}

func TestLcm(t *testing.T) {
	if Lcm(4, 6) != 12 {
		t.Fatal("lcm(4, 6) != 12")
	}
}

func TestPow(t *testing.T) {
	if Pow(2, 10) != 1024 {
		t.Fatal("2^10 != 1024")
	}
}

func TestIsPrime(t *testing.T) {
	for n, want := range map[int]bool{1: false, 2: true, 9: false, 97: true} {
		if IsPrime(n) != want {
			t.Errorf("IsPrime(%d) != %v", n, want)
		}
	}
}

func TestFib(t *testing.T) {
	if Fib(20) != 6765 {
		t.Fatal("fib(20) != 6765")
	}
}

func TestFactorial(t *testing.T) {
	if Factorial(10) != 3628800 {
		t.Fatal("10! != 3628800")
	}
}

func TestClamp(t *testing.T) {
	if Clamp(15, 0, 10) != 10 || Clamp(-1, 0, 10) != 0 || Clamp(5, 0, 10) != 5 {
		t.Fatal("Clamp is wrong")
	}
}

// TestPrimesSlow is deliberately slow, to show longest-first scheduling.
func TestPrimesSlow(t *testing.T) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got := len(Primes(100000)); got != 9592 {
			t.Fatalf("%d primes below 100000, want 9592", got)
		}
	}
}

// TestFactorialOverflow fails on purpose: 25! does not fit in an int, and
// this test documents that Factorial does not report it.
func TestFactorialOverflow(t *testing.T) {
	if got := Factorial(25); got <= 0 || got/25 != Factorial(24) {
		t.Fatalf("Factorial(25) = %d: overflow not reported", got)
	}
}
