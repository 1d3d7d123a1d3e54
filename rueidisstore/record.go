package rueidisstore

import (
	"encoding/binary"
	"errors"
	"math"
)

// Record layout: format 1 of redisstore, byte for byte, so that a
// redisstore.Store and a rueidisstore.Store with the same prefix share one
// database. Every session is one Redis string:
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
// prefix is not a format-1 record.
var ErrMalformedRecord = errors.New("rueidisstore: malformed record")

// header is a decoded record header. owner and data alias the buffer.
type header struct {
	version int64
	expiry  int64 // Unix ms
	owner   []byte
	data    []byte
}

// encode returns a new buffer holding a record.
func encode(version, expiry, idxUntil int64, owner string, data []byte) []byte {
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

// decode parses b. With full false, b may be a prefix of the value (a
// GETRANGE) that ends anywhere after the header: owner is then cut to what
// is present and data is nil.
func decode(b []byte, full bool) (header, error) {
	if len(b) < headerLen || b[0] != formatV1 {
		return header{}, ErrMalformedRecord
	}
	h := header{
		version: int64(binary.BigEndian.Uint64(b[offVersion:])),
		expiry:  int64(binary.BigEndian.Uint64(b[offExpiry:])),
	}
	n := uint64(binary.BigEndian.Uint32(b[offOwnerLen:]))
	rest := b[headerLen:]
	switch {
	case uint64(len(rest)) >= n:
		h.owner = rest[:n]
		if full {
			h.data = rest[n:]
		}
	case full:
		return header{}, ErrMalformedRecord
	default:
		h.owner = rest
	}
	return h, nil
}

func ownerLen(b []byte) int { return int(binary.BigEndian.Uint32(b[offOwnerLen:])) }

func clampMillis(ms int64) int64 { return min(max(ms, minMillis), maxMillis) }

func be64(v int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return string(b[:])
}
