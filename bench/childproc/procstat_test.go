package childproc

import "testing"

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 812 0 0 0 1234 567 0 0 20 0 9 0 123 456 789\n"
	got, err := ParseStatCPU(stat)
	if err != nil || got != 1234+567 {
		t.Fatalf("ParseStatCPU = %d, %v; want %d", got, err, 1234+567)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 0"} {
		if _, err := ParseStatCPU(bad); err == nil {
			t.Errorf("ParseStatCPU(%q): no error", bad)
		}
	}
}
