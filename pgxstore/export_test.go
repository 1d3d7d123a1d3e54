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
