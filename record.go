package sessions

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"slices"
	"strings"
)

// Record format, version 2. Every stored record starts with the format
// version byte; later formats get a new byte and this decoder keeps reading
// the earlier ones. All integers are unsigned varints (encoding/binary),
// times are Unix milliseconds:
//
//	0x02
//	flags          bit 0: browser-session cookie; bit 1: idle override
//	               present; bit 2: deadline override present; bit 3: idle
//	               timeout in force present; bit 4: persistent cookie
//	               (never with bit 0); bit 5: lifetime override present
//	start          start of the absolute lifetime
//	active         when the record was last written (never 0)
//	[idleUsed]     the idle timeout in ms the stored expiry was computed
//	               with, if flag bit 3
//	[lifetime]     per-session absolute lifetime in ms (remember me), if
//	               flag bit 5
//	[idle]         per-session idle timeout in ms, if flag bit 1
//	[deadline]     per-session absolute deadline, if flag bit 2
//	owner          length, bytes
//	count          number of values
//	count × (key length, key bytes, value length, value bytes)
//
// Version 1, written by earlier releases, is version 2 without active,
// idleUsed and lifetime (and without flag bits 3 to 5). It still decodes; such a record is
// rewritten as version 2 on its next write.
//
// active and idleUsed let a load enforce the idle timeout configured now,
// not only the one the stored expiry was computed with: the last activity
// was at least max(active, expiry-idleUsed).
//
// Values are JSON documents kept as written, so a request decodes only the
// values it reads. Keys are written in byte-wise order, so equal sessions
// encode to equal bytes.
const (
	recordV1      = 1
	recordVersion = 2
)

const (
	flagBrowser  = 1 << 0
	flagIdle     = 1 << 1
	flagDeadline = 1 << 2
	flagIdleUsed = 1 << 3
	flagCookie   = 1 << 4
	flagLifetime = 1 << 5
	flagAllV1    = flagBrowser | flagIdle | flagDeadline
	flagAll      = flagAllV1 | flagIdleUsed | flagCookie | flagLifetime
)

// browserMode is a session's own choice of cookie kind.
type browserMode uint8

const (
	browserDefault browserMode = iota // as Options.BrowserSessionCookie says
	browserOn                         // a browser-session cookie
	browserOff                        // a persistent cookie
)

var errCorrupt = errors.New("sessions: corrupt session record")

// record is the decoded form of a stored session.
type record struct {
	start    int64 // Unix ms: start of the absolute lifetime
	idle     int64 // ms; 0 = no per-session idle timeout
	deadline int64 // Unix ms; 0 = no per-session deadline
	active   int64 // Unix ms of the last write; 0 = a version 1 record
	idleUsed int64 // ms: the idle timeout the stored expiry was computed with
	lifetime int64 // ms; 0 = Options.Lifetime (remember me sets it)
	browser  browserMode
	owner    string
	values   values

	// valBound is an upper bound of the encoded size of values' entries
	// (entrySize summed), never below it: decodeRecord sets it exactly,
	// setValue adds each entry written, deletions leave it. It lets
	// sizeBound skip iterating values on every change.
	valBound int
}

// entry is one value of a record.
type entry struct {
	k string
	v json.RawMessage
}

// values are a record's values, sorted by key byte-wise, one per key: the
// order of the encoding, so decoding builds them in place and encoding
// writes them as they are. Sessions hold a few values; a sorted slice
// costs one small allocation where a map costs a table and hashing on
// every request.
type values []entry

// index returns the position of k, or where it would be inserted.
func (vs values) index(k string) (int, bool) {
	if len(vs) <= 8 { // a scan beats the binary search's branches
		for i := range vs {
			if vs[i].k >= k {
				return i, vs[i].k == k
			}
		}
		return len(vs), false
	}
	return slices.BinarySearchFunc(vs, k, func(e entry, k string) int { return strings.Compare(e.k, k) })
}

// get returns the value under k.
func (vs values) get(k string) (json.RawMessage, bool) {
	if i, ok := vs.index(k); ok {
		return vs[i].v, true
	}
	return nil, false
}

// deleteValue removes the value under k, if any.
func (r *record) deleteValue(k string) {
	if i, ok := r.values.index(k); ok {
		r.values = slices.Delete(r.values, i, i+1)
	}
}

// maxFixedSize bounds the encoding of everything but the owner and the
// values: the format byte, the flags (two bytes) and six integers below
// 1<<62 (nine bytes each).
const maxFixedSize = 1 + 2 + 6*9

// entrySize is the encoded size of one value's entry.
func entrySize(k string, v json.RawMessage) int {
	return uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
}

// setValue stores v under k, keeping valBound an upper bound.
func (r *record) setValue(k string, v json.RawMessage) {
	if i, ok := r.values.index(k); ok {
		r.values[i].v = v
	} else {
		r.values = slices.Insert(r.values, i, entry{k, v})
	}
	r.valBound += entrySize(k, v)
}

// sizeBound returns an upper bound of size() without iterating values.
func (r *record) sizeBound() int {
	return maxFixedSize + uvarintLen(uint64(len(r.owner))) + len(r.owner) +
		uvarintLen(uint64(len(r.values))) + r.valBound
}

func uvarintLen(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

// size returns the exact length of r's encoding.
func (r *record) size() int {
	n := r.fixedSize()
	for _, e := range r.values {
		n += entrySize(e.k, e.v)
	}
	return n
}

// fixedSize returns the exact length of r's encoding but for the values'
// entries.
func (r *record) fixedSize() int {
	n := 1 + 1 + uvarintLen(uint64(r.start))
	if r.active != 0 {
		n += uvarintLen(uint64(r.active))
		if r.idleUsed != 0 {
			n += uvarintLen(uint64(r.idleUsed))
		}
		if r.lifetime != 0 {
			n += uvarintLen(uint64(r.lifetime))
		}
	}
	if r.idle != 0 {
		n += uvarintLen(uint64(r.idle))
	}
	if r.deadline != 0 {
		n += uvarintLen(uint64(r.deadline))
	}
	n += uvarintLen(uint64(len(r.owner))) + len(r.owner)
	n += uvarintLen(uint64(len(r.values)))
	return n
}

// encode returns r's encoding.
func (r *record) encode() []byte {
	n := r.size()
	b := make([]byte, 0, n)
	v2 := r.active != 0
	if v2 {
		b = append(b, recordVersion)
	} else {
		b = append(b, recordV1)
	}
	var flags uint64
	switch r.browser {
	case browserOn:
		flags |= flagBrowser
	case browserOff:
		flags |= flagCookie
	}
	if r.idle != 0 {
		flags |= flagIdle
	}
	if r.deadline != 0 {
		flags |= flagDeadline
	}
	if v2 && r.idleUsed != 0 {
		flags |= flagIdleUsed
	}
	if v2 && r.lifetime != 0 {
		flags |= flagLifetime
	}
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, uint64(r.start))
	if v2 {
		b = binary.AppendUvarint(b, uint64(r.active))
		if r.idleUsed != 0 {
			b = binary.AppendUvarint(b, uint64(r.idleUsed))
		}
		if r.lifetime != 0 {
			b = binary.AppendUvarint(b, uint64(r.lifetime))
		}
	}
	if r.idle != 0 {
		b = binary.AppendUvarint(b, uint64(r.idle))
	}
	if r.deadline != 0 {
		b = binary.AppendUvarint(b, uint64(r.deadline))
	}
	b = binary.AppendUvarint(b, uint64(len(r.owner)))
	b = append(b, r.owner...)
	b = binary.AppendUvarint(b, uint64(len(r.values)))
	for _, e := range r.values {
		b = binary.AppendUvarint(b, uint64(len(e.k)))
		b = append(b, e.k...)
		b = binary.AppendUvarint(b, uint64(len(e.v)))
		b = append(b, e.v...)
	}
	return b
}

// decodeRecord parses b. The values of the result alias b, which the caller
// must not modify afterwards. It accepts only what encode produces (so
// decoding and re-encoding gives b back) and validates the framing only: a
// value's JSON is checked when it is read.
func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) == 0 || (b[0] != recordVersion && b[0] != recordV1) {
		return r, errCorrupt
	}
	v2 := b[0] == recordVersion
	d := decoder{b: b[1:]}
	flags := d.uvarint()
	if (v2 && flags&^flagAll != 0) || (!v2 && flags&^flagAllV1 != 0) || flags&(flagBrowser|flagCookie) == flagBrowser|flagCookie {
		return r, errCorrupt
	}
	switch {
	case flags&flagBrowser != 0:
		r.browser = browserOn
	case flags&flagCookie != 0:
		r.browser = browserOff
	}
	r.start = d.int()
	if v2 {
		if r.active = d.int(); r.active == 0 {
			d.err = true
		}
		if flags&flagIdleUsed != 0 {
			if r.idleUsed = d.int(); r.idleUsed == 0 {
				d.err = true
			}
		}
		if flags&flagLifetime != 0 {
			if r.lifetime = d.int(); r.lifetime == 0 {
				d.err = true
			}
		}
	}
	if flags&flagIdle != 0 {
		if r.idle = d.int(); r.idle == 0 {
			d.err = true
		}
	}
	if flags&flagDeadline != 0 {
		if r.deadline = d.int(); r.deadline == 0 {
			d.err = true
		}
	}
	r.owner = string(d.bytes())
	n := d.uvarint()
	// Each value takes at least two bytes, which bounds n before allocating.
	if d.err || n > uint64(len(d.b))/2 {
		return record{}, errCorrupt
	}
	r.valBound = len(d.b) // the entries are the rest of b, exactly
	if n > 0 {
		r.values = make(values, n)
		for i := range r.values {
			k := d.bytes()
			v := d.bytes()
			// Keys are strictly increasing: no duplicates, one encoding per record.
			if d.err || (i > 0 && string(k) <= r.values[i-1].k) {
				return record{}, errCorrupt
			}
			r.values[i] = entry{string(k), json.RawMessage(v)}
		}
	}
	if d.err || len(d.b) != 0 {
		return record{}, errCorrupt
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	// Only the canonical encoding: no trailing zero group (0x00 after a
	// continuation byte encodes the same value in more bytes).
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) int() int64 {
	x := d.uvarint()
	if x > 1<<62 {
		d.err = true
		return 0
	}
	return int64(x)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
