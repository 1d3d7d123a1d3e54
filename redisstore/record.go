package redisstore

import (
	"errors"

	"github.com/sessionkit/sessions/internal/redislua"
)

// The record layout (format 1) and its codec live in internal/redislua,
// shared with rueidisstore so that the two stores can share a database.
const (
	headerLen    = redislua.HeaderLen
	minMillis    = redislua.MinMillis
	maxOwnerSize = redislua.MaxOwnerSize
)

// ErrMalformedRecord is returned (wrapped) when a value under the store's
// prefix is not a record this package wrote, or was written by a newer
// format version.
var ErrMalformedRecord = errors.New("redisstore: malformed record")

// record is a decoded header; data and owner alias the decoded buffer.
type record = redislua.Record

var (
	encodeRecord = redislua.EncodeRecord
	ownerLen     = redislua.OwnerLen
	clampMillis  = redislua.ClampMillis
	be64         = redislua.BE64
)

// decodeRecord parses b (see redislua.DecodeRecord).
func decodeRecord(b []byte, full bool) (record, error) {
	r, ok := redislua.DecodeRecord(b, full)
	if !ok {
		return record{}, ErrMalformedRecord
	}
	return r, nil
}
