package sessions

// A Key is a session key with the type of its value, for strongly-typed
// sessions: declare each key once,
//
//	var userID = sessions.Key[int64]("user_id")
//
// and the compiler checks every use. The zero Key is the key "".
type Key[T any] string

// Get returns the value under k; see [Get].
func (k Key[T]) Get(s *Session) (T, bool, error) { return Get[T](s, string(k)) }

// Set stores v under k; see [Session.Set].
func (k Key[T]) Set(s *Session, v T) error { return s.Set(string(k), v) }

// Pop returns and removes the value under k; see [Pop].
func (k Key[T]) Pop(s *Session) (T, bool, error) { return Pop[T](s, string(k)) }

// Update applies fn to the value under k and saves at once; see [Update].
func (k Key[T]) Update(s *Session, fn func(T) T) (T, error) { return Update(s, string(k), fn) }

// Delete removes k; see [Session.Delete].
func (k Key[T]) Delete(s *Session) error { return s.Delete(string(k)) }
