package main

import "testing"

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "1mb": 1 << 20, "1MB": 1 << 20, "512mb": 512 << 20, "1gb": 1 << 30,
		"2kb": 2048, "2k": 2000, "3m": 3e6, "1g": 1e9, "10b": 10, "0": 0,
	} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mb", "-1", "1tb", "1.5mb", "99999999999gb"} {
		if got, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseYesNo(t *testing.T) {
	for in, want := range map[string]bool{"yes": true, "YES": true, "no": false, "No": false} {
		if got, err := parseYesNo(in); err != nil || got != want {
			t.Errorf("parseYesNo(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "y", "true", "1", "yess"} {
		if _, err := parseYesNo(in); err == nil {
			t.Errorf("parseYesNo(%q) accepted", in)
		}
	}
}
