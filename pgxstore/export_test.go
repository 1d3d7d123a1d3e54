package pgxstore

// Query returns the SQL text the store runs for op, so that benchmarks can
// issue the very same statement through pgx as a floor.
func (s *Store) Query(op string) string {
	switch op {
	case "Create":
		return s.qCreate
	case "Load":
		return s.qLoad
	case "Update":
		return s.qUpdate
	case "Touch":
		return s.qTouch
	}
	panic("unknown op " + op)
}

// Cached reports whether the near cache holds a copy of id.
func (c *NearCache) Cached(id string) bool {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	return e != nil && e.fill == 0
}

// Len returns the number of entries (placeholders included) in the near
// cache.
func (c *NearCache) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
