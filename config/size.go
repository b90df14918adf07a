package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are binary, as in the ESA's user interface: 1MB = 1MiB = 1048576
// bytes. Mail software has always meant that (10MB of SIZE is 10485760).
var sizeUnits = map[string]int64{
	"":  1,
	"b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
}

// ParseSize parses a byte count: a non-negative integer with an optional
// unit, in any case and optionally after a space: B, K/KB/KiB, M/MB/MiB,
// G/GB/GiB. All units are binary: "10MB" and "10MiB" are both 10485760.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	digits, unit := t[:i], strings.ToLower(strings.TrimLeft(t[i:], " "))
	if digits == "" {
		switch {
		case t == "":
			return 0, errors.New("empty size")
		case t[0] == '-':
			return 0, fmt.Errorf("size %q is negative", s)
		}
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	if strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ",") {
		return 0, fmt.Errorf("size %q is not a whole number; use a smaller unit (1536K, not 1.5M)", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q has an unknown unit %q (want B, K, M or G; binary: 1K = 1024)", s, t[i:])
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
