package auth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sessionkit/sessions"
)

// A Device is one live session of a user, as [Auth.Devices] lists it.
type Device struct {
	// Handle names the session for [Auth.RevokeDevice]. It is an HMAC of
	// the session's store ID under a key derived from Options.Key: it
	// reveals neither the session's token nor its store ID, and changes
	// when the session is renewed.
	Handle string

	// Current reports whether this is the session of the request that
	// listed it.
	Current bool

	// Known reports whether the metadata below is known: it is for the
	// current session, and for the others once they have made a request
	// after their login (a session's new ID is known only then) and if
	// [Options.DeviceStore] is set.
	Known bool

	// Created is when the session logged in.
	Created time.Time

	// LastSeen is when the session was last used, to within
	// [Options.LastSeenInterval].
	LastSeen time.Time

	// Client is a short description of the user agent ("Firefox 133 on
	// Linux").
	Client string

	// Network is the prefix of the client's address at login
	// ("203.0.113.0/24").
	Network string
}

// Devices lists the live sessions of the request's user, the current one
// first, then by last use, most recent first. It returns [ErrNotLoggedIn]
// without a user, and an error wrapping [sessions.ErrNotSupported] if the
// session store has no owner index. It also drops the device record's
// entries of sessions that ended.
func (a *Auth[U]) Devices(r *http.Request) ([]Device, error) {
	s, uid, err := a.current(r)
	if err != nil {
		return nil, err
	}
	ids, err := a.m.ListOwner(r.Context(), uid)
	if err != nil {
		return nil, notSupported(err, "listing devices")
	}
	cur, err := s.ID()
	if err != nil {
		return nil, err
	}
	recs, err := a.devices(r.Context(), uid)
	if err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "auth: device record not read", "err", err)
	}
	live := make(map[string]bool, len(ids))
	out := make([]Device, 0, len(ids))
	for _, id := range ids {
		d := Device{Handle: a.handle(id), Current: id == cur}
		live[d.Handle] = true
		if d.Current {
			if st, ok, _ := sessions.Get[state](s, stateKey); ok {
				d.setMeta(st)
			}
		} else if st, ok := recs[d.Handle]; ok {
			d.setMeta(st)
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(x, y Device) int {
		if x.Current != y.Current {
			if x.Current {
				return -1
			}
			return 1
		}
		return y.LastSeen.Compare(x.LastSeen)
	})
	stale := false
	for h := range recs {
		stale = stale || !live[h]
	}
	if stale {
		if err := a.updateDevices(r.Context(), uid, func(m map[string]state) {
			for h := range m {
				if !live[h] {
					delete(m, h)
				}
			}
		}); err != nil {
			a.cfg.Logger.WarnContext(r.Context(), "auth: device record not pruned", "err", err)
		}
	}
	return out, nil
}

func (d *Device) setMeta(st state) {
	d.Known = true
	d.Created = time.UnixMilli(st.Created)
	d.LastSeen = time.UnixMilli(st.Seen)
	d.Client, d.Network = st.Client, st.Network
}

// RevokeDevice ends the session of the request's user that handle names
// (from [Auth.Devices]). Revoking the current session logs out, as
// [Auth.Logout]. It returns [ErrUnknownDevice] when handle names no live
// session of the user, [ErrNotLoggedIn] without a user, and an error
// wrapping [sessions.ErrNotSupported] if the session store has no owner
// index.
func (a *Auth[U]) RevokeDevice(r *http.Request, handle string) error {
	s, uid, err := a.current(r)
	if err != nil {
		return err
	}
	ids, err := a.m.ListOwner(r.Context(), uid)
	if err != nil {
		return notSupported(err, "revoking a device")
	}
	cur, err := s.ID()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !hmac.Equal([]byte(a.handle(id)), []byte(handle)) {
			continue
		}
		if id == cur {
			return a.Logout(r)
		}
		if err := a.m.DestroyID(r.Context(), id); err != nil {
			return err
		}
		if err := a.updateDevices(r.Context(), uid, func(m map[string]state) { delete(m, handle) }); err != nil {
			a.cfg.Logger.WarnContext(r.Context(), "auth: device record not updated", "err", err)
		}
		return nil
	}
	return ErrUnknownDevice
}

// Device records.
//
// A user's device record is one record of Options.DeviceStore, written
// through the sessions.Store interface with a compare-and-set on its
// version, under the ID recordID(user ID), with no owner. Its data is
// JSON: {"v":1,"d":{handle: state}}.

const (
	// recordLifetime is how long a device record lives after its last
	// write: the longest a remembered session can live.
	recordLifetime = sessions.MaxRememberLifetime

	// maxDevices bounds the entries of a device record; the least recently
	// seen go first.
	maxDevices = 100

	// recordAttempts bounds the compare-and-set attempts of one update.
	recordAttempts = 8

	// storeTimeout bounds each device-record store call.
	storeTimeout = 3 * time.Second
)

type deviceRecord struct {
	V int              `json:"v"`
	D map[string]state `json:"d"`
}

var errRecordConflict = errors.New("auth: device record: concurrent update conflict")

// devices returns the entries of uid's device record.
func (a *Auth[U]) devices(ctx context.Context, uid string) (map[string]state, error) {
	if a.cfg.DeviceStore == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	data, _, _, found, err := a.cfg.DeviceStore.Load(ctx, a.recordID(uid), time.Now())
	if err != nil || !found {
		return nil, err
	}
	var rec deviceRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.V != 1 {
		return nil, nil // unreadable: as if absent; the next write replaces it
	}
	return rec.D, nil
}

// putDevice sets the entry of the session with handle h in uid's device
// record.
func (a *Auth[U]) putDevice(ctx context.Context, uid, h string, st state) error {
	st.Listed = ""
	return a.updateDevices(ctx, uid, func(m map[string]state) {
		m[h] = st
		for len(m) > maxDevices {
			oldest := ""
			for k, v := range m {
				if oldest == "" || v.Seen < m[oldest].Seen {
					oldest = k
				}
			}
			delete(m, oldest)
		}
	})
}

// updateDevices applies fn to uid's device record, with a compare-and-set
// on its version.
func (a *Auth[U]) updateDevices(ctx context.Context, uid string, fn func(map[string]state)) error {
	store := a.cfg.DeviceStore
	if store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	id := a.recordID(uid)
	for range recordAttempts {
		now := time.Now()
		data, version, _, found, err := store.Load(ctx, id, now)
		if err != nil {
			return fmt.Errorf("auth: device record: %w", err)
		}
		rec := deviceRecord{V: 1}
		if found {
			_ = json.Unmarshal(data, &rec) // unreadable: start afresh
			rec.V = 1
		}
		if rec.D == nil {
			rec.D = map[string]state{}
		}
		fn(rec.D)
		data, err = json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("auth: device record: %w", err)
		}
		exp := now.Add(recordLifetime)
		if !found {
			created, err := store.Create(ctx, id, data, exp, "", now)
			if err != nil {
				return fmt.Errorf("auth: device record: %w", err)
			}
			if created {
				return nil
			}
			continue
		}
		updated, _, err := store.Update(ctx, id, version, data, exp, "", now)
		if err != nil {
			return fmt.Errorf("auth: device record: %w", err)
		}
		if updated {
			return nil
		}
	}
	return errRecordConflict
}

// deleteDevices deletes uid's device record.
func (a *Auth[U]) deleteDevices(ctx context.Context, uid string) error {
	if a.cfg.DeviceStore == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := a.cfg.DeviceStore.Delete(ctx, a.recordID(uid)); err != nil {
		return fmt.Errorf("auth: device record: %w", err)
	}
	return nil
}

// Client descriptions.

// network returns the prefix of the client's address that a session
// records, or "".
func (a *Auth[U]) network(r *http.Request) string {
	addr, err := netip.ParseAddr(strings.Trim(a.cfg.ClientIP(r), "[]"))
	if err != nil {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	bits := a.cfg.IPv6PrefixLen
	if addr.Is4() {
		bits = a.cfg.IPv4PrefixLen
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// remoteHost is the default Options.ClientIP.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// maxClientLen bounds a client description.
const maxClientLen = 64

// ShortUserAgent returns a short description of a User-Agent header, the
// browser with its major version and the operating system ("Chrome 131 on
// Linux"), or, for agents it does not recognize, the first product token
// ("curl/8.5.0"). The result is printable ASCII of at most 64 bytes.
func ShortUserAgent(ua string) string {
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"},
		{"Chromium/", "Chromium"}, {"Chrome/", "Chrome"}, {"CriOS/", "Chrome"}, {"FxiOS/", "Firefox"},
	} {
		if i := strings.Index(ua, b.token); i >= 0 {
			browser = b.name + " " + major(ua[i+len(b.token):])
			break
		}
	}
	if browser == "" && strings.Contains(ua, "Safari/") {
		browser = "Safari"
		if i := strings.Index(ua, "Version/"); i >= 0 {
			browser += " " + major(ua[i+len("Version/"):])
		}
	}
	os := ""
	for _, o := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"},
		{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	var out string
	switch {
	case browser != "" && os != "":
		out = strings.TrimSpace(browser) + " on " + os
	case browser != "":
		out = strings.TrimSpace(browser)
	default:
		out, _, _ = strings.Cut(strings.TrimSpace(ua), " ")
		if os != "" && out != "" {
			out += " on " + os
		}
	}
	out = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, out)
	if len(out) > maxClientLen {
		out = out[:maxClientLen]
	}
	return cmp.Or(out, "unknown client")
}

// major returns the leading digits of s.
func major(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
