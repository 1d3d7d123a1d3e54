package redislua

import (
	"encoding/binary"
	"math"
)

// Record layout (format 1), shared by redisstore and rueidisstore. Every
// session is one Redis string:
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
// The scripts read the same offsets (1-based in Lua).
const (
	FormatV1     = 0x01
	offVersion   = 1
	offExpiry    = 9
	offIndex     = 17
	offOwnerLen  = 25
	HeaderLen    = 29
	MaxMillis    = 1<<53 - 1 // Lua numbers are doubles: stay exact.
	MinMillis    = -MaxMillis
	MaxOwnerSize = math.MaxUint32
)

// Record is a decoded header; Owner and Data alias the decoded buffer.
type Record struct {
	Version  int64
	Expiry   int64 // Unix ms
	IdxUntil int64 // Unix ms
	Owner    []byte
	Data     []byte
}

// EncodeRecord returns a new buffer holding the record.
func EncodeRecord(version, expiry, idxUntil int64, owner string, data []byte) []byte {
	b := make([]byte, HeaderLen+len(owner)+len(data))
	b[0] = FormatV1
	binary.BigEndian.PutUint64(b[offVersion:], uint64(version))
	binary.BigEndian.PutUint64(b[offExpiry:], uint64(expiry))
	binary.BigEndian.PutUint64(b[offIndex:], uint64(idxUntil))
	binary.BigEndian.PutUint32(b[offOwnerLen:], uint32(len(owner)))
	copy(b[HeaderLen:], owner)
	copy(b[HeaderLen+len(owner):], data)
	return b
}

// DecodeRecord parses b; ok is false when b is not a format-1 record. When
// full is false, b may be a prefix of the value that ends anywhere after
// the header (GETRANGE): Owner is then cut to what is present and Data is
// nil.
func DecodeRecord(b []byte, full bool) (r Record, ok bool) {
	if len(b) < HeaderLen || b[0] != FormatV1 {
		return Record{}, false
	}
	r = Record{
		Version:  int64(binary.BigEndian.Uint64(b[offVersion:])),
		Expiry:   int64(binary.BigEndian.Uint64(b[offExpiry:])),
		IdxUntil: int64(binary.BigEndian.Uint64(b[offIndex:])),
	}
	n := uint64(binary.BigEndian.Uint32(b[offOwnerLen:]))
	rest := b[HeaderLen:]
	if uint64(len(rest)) < n {
		if full {
			return Record{}, false
		}
		r.Owner = rest
		return r, true
	}
	r.Owner = rest[:n]
	if full {
		r.Data = rest[n:]
	}
	return r, true
}

// OwnerLen reports the owner length stored in a header prefix.
func OwnerLen(b []byte) int { return int(binary.BigEndian.Uint32(b[offOwnerLen:])) }

// ClampMillis keeps a Unix-millisecond value within the range that Lua
// (doubles) represents exactly.
func ClampMillis(ms int64) int64 { return min(max(ms, MinMillis), MaxMillis) }

// BE64 returns v as 8 big-endian bytes.
func BE64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}
