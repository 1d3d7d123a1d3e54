package reliability

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The sequential model of a session slot, against which the histories are
// checked.
//
// A slot is an owner ("u0", "u1", ...) that has at most one session at a
// time: the session's identity survives renewals (a renewal moves the slot
// to a new token) and ends with a destroy or a logout-everywhere, after
// which a client logs in again (a create) and the slot has a new session.
// The model's state is the token that currently names the slot's session
// ("" when it has none) and the session's values: two strings set and
// deleted blindly (a, b) and a counter incremented with a compare-and-set
// (n).
//
// Every operation but create and logout carries the token the client used.
// A token that is not the slot's current one names nothing: the request
// sees a new session (outcome "new", nothing written) or, when its save
// finds the record ended after it was loaded, ErrSessionGone (outcome
// "gone", HTTP 409). Both are valid outcomes only of a dead token; a live
// token must answer with its data. A destroy through a dead token answers
// "ok" and changes nothing (the request deleted the record it had loaded,
// which a renewal had retired meanwhile).
//
// Staleness: with window > 0 (two instances, each with a cachestore front
// of the same back), a read may also answer with a state the slot had at
// some time within window before the read was called, and no earlier: the
// model keeps the states the slot left, each with the latest time it can
// have been left (the return of the write that replaced it), and a read
// called at c may match one left after c-window. Writes are never allowed
// to be stale: their outcomes are checked against the current state only.

// linKind is an operation of the model.
type linKind uint8

const (
	linGet linKind = iota
	linSet
	linDel
	linIncr
	linRenew
	linDestroy
	linLogout
	linCreate
)

var linKindNames = [...]string{"get", "set", "del", "incr", "renew", "destroy", "logout", "create"}

func (k linKind) String() string { return linKindNames[k] }

// linInput is what a client asked for.
type linInput struct {
	Slot  int
	Kind  linKind
	Token string // the token the request carried (not for logout, create)
	Key   string // "a" or "b" for set and del
	Val   string // for set and create (the new session's "a")
	Call  int64  // the call and return times, for the staleness window
	Ret   int64
	// Doom, for a create, is the latest return of a logout of the slot
	// that ran concurrently with it (0: none): see linDoom.
	Doom int64
}

// linOutput is what the server answered.
type linOutput struct {
	Status string // "ok", "new" (the token named no session), "gone" (409)
	A, B   string // get
	N      int    // get, incr
	Token  string // renew, create: the token of the cookie set
}

// linValues is a session's state as the model sees it.
type linValues struct {
	Token string
	A, B  string
	N     int
	// Doom is the latest time a logout that raced this session's login
	// may have ended it (0: none); Seen is the latest call of an operation
	// that found it live. An end by that logout must fall between the two.
	Doom, Seen int64
}

// linState is the model's state: the current values, and (with a
// staleness window) the states left recently, with when they were left at
// the latest.
type linState struct {
	linValues
	Hist []linPast
}

type linPast struct {
	linValues
	Until int64
}

// linModel returns the model with the given staleness window (0: strict
// linearizability) in the unit of the histories' times (nanoseconds).
// maxDur is the longest operation of the history: states left before
// c-window-maxDur, where c is the call of the operation being linearized,
// can no longer matter to any operation linearized after it.
func linModel(window, maxDur int64) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[int][]porcupine.Operation{}
			var slots []int
			for _, op := range h {
				s := op.Input.(linInput).Slot
				if _, ok := by[s]; !ok {
					slots = append(slots, s)
				}
				by[s] = append(by[s], op)
			}
			slices.Sort(slots)
			out := make([][]porcupine.Operation, 0, len(slots))
			for _, s := range slots {
				out = append(out, by[s])
			}
			return out
		},
		Init: func() []any { return []any{linState{}} },
		Step: func(state, input, output any) []any {
			return linStep(state.(linState), input.(linInput), output.(linOutput), window, maxDur)
		},
		Equal: func(a, b any) bool {
			x, y := a.(linState), b.(linState)
			return x.linValues == y.linValues && slices.Equal(x.Hist, y.Hist)
		},
		Hash: func(state any) uint64 {
			st := state.(linState)
			var h maphash.Hash
			h.SetSeed(linSeed)
			h.WriteString(st.Token)
			h.WriteString(st.A)
			h.WriteString(st.B)
			maphash.WriteComparable(&h, [4]int64{int64(st.N), st.Doom, st.Seen, int64(len(st.Hist))})
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			return linDescribe(input.(linInput), output.(linOutput))
		},
		DescribeState: func(state any) string {
			st := state.(linState)
			if st.Token == "" {
				return fmt.Sprintf("no session (%d recent states)", len(st.Hist))
			}
			return fmt.Sprintf("%s a=%q b=%q n=%d (%d recent states)", linShort(st.Token), st.A, st.B, st.N, len(st.Hist))
		},
	}
	return nm.ToModel()
}

var linSeed = maphash.MakeSeed()

// linStep returns the states st can move to by the operation, none if the
// operation cannot happen in st.
func linStep(st linState, in linInput, out linOutput, window, maxDur int64) []any {
	res := linStep1(st, in, out, window, maxDur)
	if in.Token != "" && in.Token == st.Token && out.Status == "ok" {
		for i, r := range res {
			if r := r.(linState); r.Token != "" && r.Seen < in.Call {
				r.Seen = in.Call
				res[i] = r
			}
		}
	}
	if st.Token != "" && st.Doom > 0 && st.Seen <= min(st.Doom, in.Ret) {
		// A logout that ran concurrently with this session's login may
		// have ended it at any time until the logout returned (and after
		// every operation that found it live): then this operation.
		ended := linState{Hist: st.Hist}
		if window > 0 {
			ended.Hist = append(slices.Clone(st.Hist), linPast{linValues: st.linValues, Until: st.Doom})
		}
		res = append(res, linStep1(ended, in, out, window, maxDur)...)
	}
	return res
}

func linStep1(st linState, in linInput, out linOutput, window, maxDur int64) []any {
	cur := st.linValues
	live := in.Token != "" && in.Token == cur.Token
	next := func(v linValues) []any {
		if v == cur {
			return []any{st}
		}
		ns := linState{linValues: v}
		if window > 0 {
			// Keep the recent past, and what st leaves now: it was current
			// until this operation returned, at the latest.
			for _, p := range st.Hist {
				if p.Until > in.Call-window-maxDur {
					ns.Hist = append(ns.Hist, p)
				}
			}
			ns.Hist = append(ns.Hist, linPast{linValues: cur, Until: in.Ret})
		}
		return []any{ns}
	}
	// seen reports whether a read may answer from v: the current state, or
	// one left within the window before the read was called.
	seen := func(ok func(v linValues) bool) bool {
		if ok(cur) {
			return true
		}
		if window > 0 {
			for _, p := range st.Hist {
				if p.Until >= in.Call-window && ok(p.linValues) {
					return true
				}
			}
		}
		return false
	}
	switch in.Kind {
	case linCreate:
		if out.Status != "ok" || out.Token == "" {
			return nil
		}
		return next(linValues{Token: out.Token, A: in.Val, Doom: in.Doom})
	case linLogout:
		switch out.Status {
		case "ok":
			return next(linValues{})
		case "conflict":
			// ErrConflict: logins kept racing the logout's rounds. The
			// session it found is ended, or a racing login survives.
			return append(next(linValues{}), st)
		}
		return nil
	}
	switch out.Status {
	case "new", "gone":
		// Only a dead token sees no session, and then nothing changes.
		if live {
			return nil
		}
		return []any{st}
	case "ok":
	default:
		return nil
	}
	switch in.Kind {
	case linGet:
		if seen(func(v linValues) bool {
			return v.Token != "" && v.Token == in.Token && v.A == out.A && v.B == out.B && v.N == out.N
		}) {
			return []any{st}
		}
		return nil
	case linSet, linDel:
		val := in.Val
		if in.Kind == linDel {
			val = ""
		}
		var res []any
		if live {
			v := cur
			if in.Key == "a" {
				v.A = val
			} else {
				v.B = val
			}
			res = next(v)
		}
		// A write of the value already there is no write: the request
		// only read, possibly from a stale front.
		if window > 0 && seen(func(v linValues) bool {
			return v.Token != "" && v.Token == in.Token && (in.Key == "a" && v.A == val || in.Key == "b" && v.B == val)
		}) {
			res = append(res, st)
		}
		return res
	case linIncr:
		if !live || out.N != cur.N+1 {
			return nil
		}
		v := cur
		v.N++
		return next(v)
	case linRenew:
		if !live || out.Token == "" || out.Token == in.Token {
			return nil
		}
		v := cur
		v.Token = out.Token
		return next(v)
	case linDestroy:
		if !live {
			return []any{st} // deleted a record that was already dead
		}
		return next(linValues{})
	}
	return nil
}

// linDoom sets the Doom of every create of history: the latest return of
// a logout of the same slot whose interval overlaps the create's.
// DestroyOwner deletes, lists and deletes again until the owner has no
// session left, so a login that races it may be ended at any time until it
// returns ("sessions that log in afterwards are not affected": afterwards,
// not meanwhile).
func linDoom(history []porcupine.Operation) {
	for i, op := range history {
		in := op.Input.(linInput)
		if in.Kind != linCreate {
			continue
		}
		for _, l := range history {
			li := l.Input.(linInput)
			if li.Kind == linLogout && li.Slot == in.Slot && l.Call <= op.Return && l.Return >= op.Call {
				in.Doom = max(in.Doom, l.Return)
			}
		}
		history[i].Input = in
	}
}

func linShort(tok string) string {
	if len(tok) > 6 {
		return tok[:6]
	}
	return tok
}

func linDescribe(in linInput, out linOutput) string {
	var b strings.Builder
	b.WriteString(in.Kind.String())
	if in.Token != "" {
		b.WriteString("@" + linShort(in.Token))
	}
	switch in.Kind {
	case linSet:
		fmt.Fprintf(&b, "(%s=%q)", in.Key, in.Val)
	case linDel:
		fmt.Fprintf(&b, "(%s)", in.Key)
	case linCreate:
		fmt.Fprintf(&b, "(a=%q)", in.Val)
	}
	b.WriteString(" -> " + out.Status)
	if out.Status == "ok" {
		switch in.Kind {
		case linGet:
			fmt.Fprintf(&b, " a=%q b=%q n=%d", out.A, out.B, out.N)
		case linIncr:
			fmt.Fprintf(&b, " n=%d", out.N)
		case linRenew, linCreate:
			b.WriteString(" " + linShort(out.Token))
		}
	}
	return b.String()
}
