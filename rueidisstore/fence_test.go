package rueidisstore

import (
	"testing"
	"time"
)

// TestFenceSatisfiedBy: which cached copies show a fenced write.
func TestFenceSatisfiedBy(t *testing.T) {
	live := func(v, exp int64) header { return header{Version: v, Expiry: exp} }
	for _, c := range []struct {
		name  string
		f     fence
		h     header
		found bool
		want  bool
	}{
		{"unknown never", fence{unknown: true}, live(9, 9), true, false},
		{"gone: absent", fence{gone: true}, header{}, false, true},
		{"gone: still there", fence{gone: true}, live(1, 5), true, false},
		{"update: old version", fence{version: 2, expiry: 5}, live(1, 5), true, false},
		{"update: same", fence{version: 2, expiry: 5}, live(2, 5), true, true},
		{"update: same version, touched later", fence{version: 2, expiry: 5}, live(2, 6), true, true},
		{"update: same version, earlier expiry", fence{version: 2, expiry: 5}, live(2, 4), true, false},
		{"update: later version", fence{version: 2, expiry: 5}, live(3, 1), true, true},
		{"update: absent copy", fence{version: 2, expiry: 5}, header{}, false, false},
		{"touch: not moved", fence{touch: true, expiry: 5}, live(1, 4), true, false},
		{"touch: moved", fence{touch: true, expiry: 5}, live(1, 5), true, true},
	} {
		if got := c.f.satisfiedBy(c.h, c.found); got != c.want {
			t.Errorf("%s: satisfiedBy = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFencesExpire: a fence is dropped after its keep time, and the map
// prunes old fences as it grows.
func TestFencesExpire(t *testing.T) {
	var fs fences
	fs.init(20 * time.Millisecond)
	fs.set("a", fence{gone: true})
	if _, ok := fs.get("a"); !ok {
		t.Fatal("fresh fence missing")
	}
	time.Sleep(30 * time.Millisecond)
	if _, ok := fs.get("a"); ok {
		t.Fatal("fence outlived its keep time")
	}
	for i := range 10000 {
		fs.set(string(rune('a'+i%26))+time.Duration(i).String(), fence{gone: true})
	}
	time.Sleep(30 * time.Millisecond)
	for i := range 10000 {
		fs.set("b"+time.Duration(i).String(), fence{gone: true})
	}
	total := 0
	for i := range fs.shards {
		total += len(fs.shards[i].m)
	}
	if total > 15000 {
		t.Errorf("%d fences kept; the 10,000 expired ones were not pruned", total)
	}
	fs.set("c", fence{version: 1})
	f, _ := fs.get("c")
	fs.set("c", fence{version: 2})
	fs.clear("c", f) // a later write's fence stays
	if g, ok := fs.get("c"); !ok || g.version != 2 {
		t.Errorf("clear removed a later fence: %+v %v", g, ok)
	}
}
