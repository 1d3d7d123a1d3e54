package otelsessions

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	tests := []struct{ in, want string }{
		{"", ""},
		{"connection refused", "connection refused"},
		{"load " + id + ": timeout", "load [redacted]: timeout"},
		{id, "[redacted]"},
		{"a " + id + " b " + strings.ToUpper(id[:40]), "a [redacted] b [redacted]"},
		{"half " + id[:32] + ".", "half [redacted]."},
		{"short " + id[:31] + " deadbeef", "short " + id[:31] + " deadbeef"},
		{"uuid 123e4567-e89b-12d3-a456-426614174000", "uuid 123e4567-e89b-12d3-a456-426614174000"},
	}
	for _, tc := range tests {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
