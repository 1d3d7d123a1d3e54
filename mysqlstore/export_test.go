package mysqlstore

// Query returns the SQL text the store runs for op, so that benchmarks can
// issue the very same statement through database/sql as a floor.
func (s *Store) Query(op string) string {
	switch op {
	case "Create":
		return s.create.query
	case "Load":
		return s.load.query
	case "Update":
		return s.update.query
	case "Touch":
		return s.touch.query
	}
	panic("unknown op " + op)
}
