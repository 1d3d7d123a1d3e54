package rueidisstore

import (
	"errors"

	"github.com/sessionkit/sessions/internal/redislua"
)

// The record layout is redisstore's format 1, byte for byte (its codec is
// shared in internal/redislua), so that a redisstore.Store and a
// rueidisstore.Store with the same prefix share one database.
const (
	headerLen    = redislua.HeaderLen
	minMillis    = redislua.MinMillis
	maxOwnerSize = redislua.MaxOwnerSize
)

// ErrMalformedRecord is returned (wrapped) when a value under the store's
// prefix is not a format-1 record.
var ErrMalformedRecord = errors.New("rueidisstore: malformed record")

// header is a decoded record header. Owner and Data alias the buffer.
type header = redislua.Record

var (
	encode      = redislua.EncodeRecord
	ownerLen    = redislua.OwnerLen
	clampMillis = redislua.ClampMillis
)

// decode parses b (see redislua.DecodeRecord).
func decode(b []byte, full bool) (header, error) {
	h, ok := redislua.DecodeRecord(b, full)
	if !ok {
		return header{}, ErrMalformedRecord
	}
	return h, nil
}

// be64 returns v as 8 big-endian bytes, as a script argument.
func be64(v int64) string { return string(redislua.BE64(v)) }
