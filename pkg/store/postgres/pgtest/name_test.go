package pgtest

import (
	"regexp"
	"strings"
	"testing"
)

func TestSchemaName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	for _, name := range []string{"TestX", "TestStore/CreateUser", strings.Repeat("TestVeryLong/Name#01", 10), "", "Ünïcode test"} {
		got := schemaName(name)
		if !valid.MatchString(got) || len(got) > 63 {
			t.Errorf("schemaName(%q) = %q, not a plain identifier of at most 63 bytes", name, got)
		}
		if again := schemaName(name); again == got {
			t.Errorf("schemaName(%q) twice = %q", name, got)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"url", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
			"postgres://postgres@127.0.0.1:5432/test?search_path=s1&sslmode=disable"},
		{"url replaces", "postgresql://u:p@h/db?search_path=other",
			"postgresql://u:p@h/db?search_path=s1"},
		{"keyword/value", "host=127.0.0.1 user=postgres dbname=test",
			"host=127.0.0.1 user=postgres dbname=test search_path=s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withSearchPath(tt.in, "s1")
			if err != nil || got != tt.want {
				t.Errorf("withSearchPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := withSearchPath("postgres://u:secret@[::1", "s1"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("withSearchPath(bad URL) error = %v, want one without the password", err)
	}
}
