package main

import "testing"

func TestSieve(t *testing.T) {
	base := smallPrimes(1001)
	var total, largest int64
	for s := range 7 {
		lo, hi := int64(s)*150000, min(int64(s+1)*150000, 1000000)
		n, l := segment(lo, hi, base)
		total += n
		if l > 0 {
			largest = l
		}
	}
	if total != 78498 || largest != 999983 {
		t.Fatalf("primes below 1,000,000: %d, largest %d; want 78498 and 999983", total, largest)
	}
}
