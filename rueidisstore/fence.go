package rueidisstore

import (
	"hash/maphash"
	"sync"
	"time"
)

// Read-your-writes on one Store. Redis invalidates the near-cache
// asynchronously, also for the connection that wrote (and rueidis may write
// on another connection than the one that cached the key), so right after a
// write returns, the cache may still hold the previous copy for a moment.
// Every successful write therefore leaves a fence saying what the record is
// now; a Load whose copy does not show that state reads through with an
// uncached GET, and a Load whose copy shows it removes the fence. A fence
// older than twice MaxCacheAge is dropped: every copy cached before its
// write has expired by then. A write that failed (a timeout, a broken
// connection) may still have been applied: its fence is never satisfied, so
// Loads of that id read through until it expires.

// fence is the state of a record after this store's write.
type fence struct {
	unknown bool  // a write failed: it may or may not have been applied
	gone    bool  // deleted (or written already expired)
	touch   bool  // expiry moved to at least expiry, version unknown
	version int64 // written version (not touch)
	expiry  int64 // Unix ms
	at      int64 // monotonic ns of the write, for pruning
}

// satisfiedBy reports whether a copy (h, found: live at the Load's now)
// shows the fenced write or a later state.
func (f fence) satisfiedBy(h header, found bool) bool {
	switch {
	case f.unknown:
		return false // read through until the fence expires
	case f.gone:
		return !found
	case !found:
		// The copy says absent or expired; the write made the record live
		// (unless it has since expired at the Load's now, which a fresh
		// read reports as well).
		return false
	case f.touch:
		return h.Expiry >= f.expiry
	default:
		return h.Version > f.version || h.Version == f.version && h.Expiry >= f.expiry
	}
}

const fenceShards = 64

type fenceShard struct {
	mu   sync.Mutex
	m    map[string]fence
	next int // size at which the next insert prunes
	_    [40]byte
}

// fences is a sharded map id -> fence. Loads of ids that were not written
// recently cost one lock and one map lookup.
type fences struct {
	seed   maphash.Seed
	keep   int64 // ns
	start  time.Time
	shards [fenceShards]fenceShard
}

func (fs *fences) init(keep time.Duration) {
	fs.seed = maphash.MakeSeed()
	fs.keep = int64(keep)
	fs.start = time.Now()
}

func (fs *fences) now() int64 { return int64(time.Since(fs.start)) }

func (fs *fences) shard(id string) *fenceShard {
	return &fs.shards[maphash.String(fs.seed, id)%fenceShards]
}

func (fs *fences) set(id string, f fence) {
	f.at = fs.now()
	sh := fs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[string]fence)
	}
	sh.m[id] = f
	if len(sh.m) >= max(sh.next, 64) {
		for k, g := range sh.m {
			if f.at-g.at > fs.keep {
				delete(sh.m, k)
			}
		}
		sh.next = 2 * len(sh.m)
	}
}

// get returns the live fence of id.
func (fs *fences) get(id string) (fence, bool) {
	sh := fs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.m[id]
	if ok && fs.now()-f.at > fs.keep {
		delete(sh.m, id)
		return fence{}, false
	}
	return f, ok
}

// clear removes id's fence if it is still f (a later write keeps its own).
func (fs *fences) clear(id string, f fence) {
	sh := fs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if g, ok := sh.m[id]; ok && g == f {
		delete(sh.m, id)
	}
}
