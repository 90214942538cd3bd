package main

import "testing"

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
