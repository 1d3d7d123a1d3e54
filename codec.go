package sessions

import (
	"encoding/json"
	"strconv"
)

// decodeValue is json.Unmarshal(raw, v) with a fast path for the values
// sessions hold most (counters, flags, short strings), as json.Marshal
// writes them: an integer literal into an int or int64, true or false
// into a bool, a string without escapes into a string. Anything else,
// including whatever the fast path does not recognise, goes to
// encoding/json, so results and errors are exactly json.Unmarshal's.
func decodeValue[T any](raw []byte, v *T) error {
	switch p := any(v).(type) {
	case *int:
		if n, ok := parseInt(raw); ok {
			*p = int(n)
			return nil
		}
	case *int64:
		if n, ok := parseInt(raw); ok {
			*p = n
			return nil
		}
	case *bool:
		switch string(raw) {
		case "true":
			*p = true
			return nil
		case "false":
			*p = false
			return nil
		}
	case *string:
		if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && plainString(raw[1:len(raw)-1]) {
			*p = string(raw[1 : len(raw)-1])
			return nil
		}
	}
	return json.Unmarshal(raw, v)
}

// encodeValue is json.Marshal(v), with the same fast path: the bytes are
// identical to json.Marshal's.
func encodeValue[T any](v *T) ([]byte, error) {
	switch p := any(v).(type) {
	case *int:
		return strconv.AppendInt(make([]byte, 0, 20), int64(*p), 10), nil
	case *int64:
		return strconv.AppendInt(make([]byte, 0, 20), *p, 10), nil
	case *bool:
		return strconv.AppendBool(make([]byte, 0, 5), *p), nil
	case *string:
		if plainString([]byte(*p)) {
			b := make([]byte, 0, len(*p)+2)
			b = append(b, '"')
			b = append(b, *p...)
			return append(b, '"'), nil
		}
	}
	return json.Marshal(*v)
}

// parseInt parses a JSON integer literal of at most 18 digits (so that it
// cannot overflow an int64, nor an int on 64-bit platforms) in the one
// form json.Marshal writes: an optional minus and no leading zero.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) || strconv.IntSize < 64 && len(b) > 9 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// plainString reports whether s is printable ASCII that encoding/json
// neither escapes nor rewrites: no control character, no quote, no
// backslash, and none of the HTML characters <, > and & that json.Marshal
// escapes.
func plainString(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
