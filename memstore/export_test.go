package memstore

// OwnerCount returns how many owners the index of s holds, for tests.
func OwnerCount(s *Store) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.owners)
}
