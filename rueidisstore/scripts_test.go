package rueidisstore

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestScriptsMatchRedisstore: the two stores share a database only if
// their scripts do the same thing. This module does not import redisstore
// (it would pull in go-redis), so the test reads redisstore's source from
// the repository and compares every script's Lua text, error prefix aside.
func TestScriptsMatchRedisstore(t *testing.T) {
	theirs, err := os.ReadFile("../redisstore/scripts.go")
	if err != nil {
		t.Skipf("redisstore's source is not beside this module: %v", err)
	}
	ours, err := os.ReadFile("scripts.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)(?:const|var) (\\w+) = (?:redis\\.NewScript\\(|rueidis\\.NewLuaScript\\()?`(.*?)`")
	scripts := func(src []byte, prefix string) map[string]string {
		m := map[string]string{}
		for _, s := range re.FindAllSubmatch(src, -1) {
			m[string(s[1])] = strings.ReplaceAll(string(s[2]), prefix+": malformed record", "PREFIX: malformed record")
		}
		return m
	}
	a, b := scripts(theirs, "redisstore"), scripts(ours, "rueidisstore")
	if len(a) != 7 || len(b) != len(a) {
		t.Fatalf("found %d scripts in redisstore, %d here; want 7 each", len(a), len(b))
	}
	for name, src := range a {
		if b[name] != src {
			t.Errorf("%s differs from redisstore's:\n%s\n---- redisstore ----\n%s", name, b[name], src)
		}
	}
}
