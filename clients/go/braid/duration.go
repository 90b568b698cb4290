package braid

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// humantime units, as the server's file parser (Rust humantime) knows them.
var durationUnits = map[string]time.Duration{
	"nanos": time.Nanosecond, "nsec": time.Nanosecond, "ns": time.Nanosecond,
	"usec": time.Microsecond, "us": time.Microsecond, "µs": time.Microsecond,
	"millis": time.Millisecond, "msec": time.Millisecond, "ms": time.Millisecond,
	"seconds": time.Second, "second": time.Second, "secs": time.Second, "sec": time.Second, "s": time.Second,
	"minutes": time.Minute, "minute": time.Minute, "mins": time.Minute, "min": time.Minute, "m": time.Minute,
	"hours": time.Hour, "hour": time.Hour, "hrs": time.Hour, "hr": time.Hour, "h": time.Hour,
	"days": 24 * time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
	"weeks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"months": 2_630_016 * time.Second, "month": 2_630_016 * time.Second, "M": 2_630_016 * time.Second,
	"years": 31_557_600 * time.Second, "year": 31_557_600 * time.Second, "y": 31_557_600 * time.Second,
}

// ParseDuration parses a duration as written in workflow files: humantime strings such as
// "500ms", "1s", "5m", "1m 30s", "1h30m" or "2days" (whole numbers, each with a unit).
func ParseDuration(text string) (time.Duration, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q", text, s)
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %v", text, err)
		}
		s = strings.TrimLeft(s[i:], " ")
		j := 0
		for j < len(s) && s[j] != ' ' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit, ok := durationUnits[s[:j]]
		if !ok {
			if j == 0 {
				return 0, fmt.Errorf("invalid duration %q: a number needs a unit (e.g. 30s)", text)
			}
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", text, s[:j])
		}
		if n > int64(math.MaxInt64/unit) {
			return 0, fmt.Errorf("invalid duration %q: too large", text)
		}
		total += time.Duration(n) * unit
		s = strings.TrimLeft(s[j:], " ")
	}
	return total, nil
}

// FormatDuration writes d the way the server's canonical form does ("1m 30s", "500ms", "0s").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var parts []string
	neg := d < 0
	if neg {
		d = -d
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.name)
			d -= n * u.d
		}
	}
	s := strings.Join(parts, " ")
	if neg {
		s = "-" + s
	}
	return s
}
