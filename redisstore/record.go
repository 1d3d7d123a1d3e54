package redisstore

import (
	"encoding/binary"
	"errors"
	"math"
)

// Record layout (format 1). Every session is one Redis string:
//
//	offset  size  field
//	0       1     format, 0x01
//	1       8     version, int64 big-endian
//	9       8     expiry, Unix milliseconds, int64 big-endian
//	17      8     owner-index deadline, Unix milliseconds, int64 big-endian
//	              (0 when the owner is empty)
//	25      4     owner length n, uint32 big-endian
//	29      n     owner, raw bytes
//	29+n    ...   data, raw bytes (may be empty)
//
// The Lua scripts (package internal/redislua) read the same offsets (1-based there).
const (
	formatV1     = 0x01
	offVersion   = 1
	offExpiry    = 9
	offIndex     = 17
	offOwnerLen  = 25
	headerLen    = 29
	maxMillis    = 1<<53 - 1 // Lua numbers are doubles: stay exact.
	minMillis    = -maxMillis
	maxOwnerSize = math.MaxUint32
)

// ErrMalformedRecord is returned (wrapped) when a value under the store's
// prefix is not a record this package wrote, or was written by a newer
// format version.
var ErrMalformedRecord = errors.New("redisstore: malformed record")

// record is a decoded header; data and owner alias the decoded buffer.
type record struct {
	version  int64
	expiry   int64 // Unix ms
	idxUntil int64 // Unix ms
	owner    []byte
	data     []byte
}

// encodeRecord returns a new buffer holding the record.
func encodeRecord(version, expiry, idxUntil int64, owner string, data []byte) []byte {
	b := make([]byte, headerLen+len(owner)+len(data))
	b[0] = formatV1
	binary.BigEndian.PutUint64(b[offVersion:], uint64(version))
	binary.BigEndian.PutUint64(b[offExpiry:], uint64(expiry))
	binary.BigEndian.PutUint64(b[offIndex:], uint64(idxUntil))
	binary.BigEndian.PutUint32(b[offOwnerLen:], uint32(len(owner)))
	copy(b[headerLen:], owner)
	copy(b[headerLen+len(owner):], data)
	return b
}

// decodeRecord parses b. When full is false, b may be a prefix of the value
// that ends anywhere after the header (GETRANGE): owner is then cut to what
// is present and data is nil.
func decodeRecord(b []byte, full bool) (record, error) {
	if len(b) < headerLen || b[0] != formatV1 {
		return record{}, ErrMalformedRecord
	}
	r := record{
		version:  int64(binary.BigEndian.Uint64(b[offVersion:])),
		expiry:   int64(binary.BigEndian.Uint64(b[offExpiry:])),
		idxUntil: int64(binary.BigEndian.Uint64(b[offIndex:])),
	}
	n := uint64(binary.BigEndian.Uint32(b[offOwnerLen:]))
	rest := b[headerLen:]
	if uint64(len(rest)) < n {
		if full {
			return record{}, ErrMalformedRecord
		}
		r.owner = rest
		return r, nil
	}
	r.owner = rest[:n]
	if full {
		r.data = rest[n:]
	}
	return r, nil
}

// ownerLen reports the owner length stored in a header prefix.
func ownerLen(b []byte) int {
	return int(binary.BigEndian.Uint32(b[offOwnerLen:]))
}

// clampMillis keeps a Unix-millisecond value within the range that Lua
// (doubles) represents exactly.
func clampMillis(ms int64) int64 {
	return min(max(ms, minMillis), maxMillis)
}

// be64 returns v as 8 big-endian bytes.
func be64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}
