// Package redislua holds the Lua scripts of the Redis stores (redisstore on
// go-redis, rueidisstore on rueidis): both keep the same record layout and
// run the same scripts, so they can share a database. It is internal to
// this repository's modules.
//
// Every script touches exactly one key, passed in KEYS[1], so each is valid
// on Redis Cluster. Offsets are 1-based in Lua; see redisstore's record.go
// for the layout. Numbers arrive as decimal strings and stay below 2^53, so
// Lua's doubles hold them exactly.
package redislua

// Scripts is the source of every script.
type Scripts struct {
	// Create is Create's slow path, run only when SET NX found a key: it
	// replaces a record that is expired at the caller's now and keeps a live one.
	// ARGV: now, value, pxat, delete ("1" when the new record is already
	// expired, so nothing is written).
	// Returns 1 when created, 0 when a live record exists.
	Create string

	// Update is a compare-and-set on the version. The hot path is one
	// command: SET ... GET writes the new value and returns the old one, which
	// is then checked; when the write must not happen (gone, changed, owner
	// index to extend, malformed), the script puts the old value back (or
	// deletes the key it created), atomically, so nothing is observable but a
	// keyspace event. The restored TTL is the old record's embedded expiry plus
	// the grace, which is what every write of this store sets (a malformed
	// value gets the new value's TTL). Reading the header with GETRANGE first
	// and then SET cost two commands; each command called from Lua costs about
	// as much as the script's own startup (see the README).
	// ARGV: now, expected version (8 bytes), new value, new expiry, pxat, new
	// owner, permit ("1" when the caller has just extended the owner index and
	// the new value's index deadline is authoritative), grace (ms).
	// Returns 0 gone, 1 changed, 2 updated, 3 the owner index must be extended
	// first (nothing written).
	Update string

	// Touch moves the expiry later, never earlier, and never creates. It
	// reads only the 29-byte header (and the owner when the index must grow).
	// ARGV: now, new expiry, pxat, then (only after an index extension) the
	// permitted owner and index deadline.
	// Returns 0 not found, 1 found (moved or already later), or the owner (a
	// string) when that owner's index must be extended first (nothing written).
	Touch string

	// DeleteOwned deletes a record only if it still belongs to the owner.
	// ARGV: owner, now. Returns 0 not deleted, 1 deleted and live at now,
	// 2 deleted and already expired.
	DeleteOwned string

	// IndexAdd adds a session to an owner index (a hash: id -> write
	// token) and makes sure the index lives until at least ARGV[3].
	// ARGV: id, token, pexpireat. Returns the number of members.
	IndexAdd string

	// IndexRemove removes members whose write token is still the one the
	// caller observed, so that a concurrent re-add survives.
	// ARGV: id1, token1, id2, token2, ... Returns the number removed.
	IndexRemove string
}

// New returns the scripts, with errors prefixed by prefix (the store's
// package name).
func New(prefix string) Scripts {
	// check rejects values that are not format-1 records.
	check := `
if string.len(v) < 29 or string.byte(v, 1) ~= 1 then
  return redis.error_reply('` + prefix + `: malformed record')
end
`
	return Scripts{
		Create: `
local v = redis.call('GET', KEYS[1])
if v then
` + check + `
  if struct.unpack('>i8', v, 10) > tonumber(ARGV[1]) then return 0 end
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return 1
`,
		Update: `
local v = redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[5], 'GET')
if not v then
  redis.call('DEL', KEYS[1])
  return 0
end
local ok = string.len(v) >= 29 and string.byte(v, 1) == 1
local function undo()
  local pxat = ARGV[5]
  if ok then
    pxat = string.format('%d', math.max(struct.unpack('>i8', v, 10) + tonumber(ARGV[8]), 1))
  end
  redis.call('SET', KEYS[1], v, 'PXAT', pxat)
end
if not ok then
  undo()
  return redis.error_reply('redisstore: malformed record')
end
local now = tonumber(ARGV[1])
if struct.unpack('>i8', v, 10) <= now then undo() return 0 end
if string.sub(v, 2, 9) ~= ARGV[2] then undo() return 1 end
local exp = tonumber(ARGV[4])
if exp <= now then
  redis.call('DEL', KEYS[1])
  return 2
end
if ARGV[6] ~= '' and ARGV[7] ~= '1' then
  local n = struct.unpack('>I4', v, 26)
  if struct.unpack('>i8', v, 18) < exp or n ~= string.len(ARGV[6]) or
      string.sub(v, 30, 29 + n) ~= ARGV[6] then
    undo()
    return 3
  end
  redis.call('SETRANGE', KEYS[1], 17, string.sub(v, 18, 25))
end
return 2
`,
		Touch: `
local v = redis.call('GETRANGE', KEYS[1], 0, 28)
if v == '' then return 0 end
` + check + `
local cur = struct.unpack('>i8', v, 10)
if cur <= tonumber(ARGV[1]) then return 0 end
local exp = tonumber(ARGV[2])
if exp <= cur then return 1 end
local n = struct.unpack('>I4', v, 26)
if n > 0 and struct.unpack('>i8', v, 18) < exp then
  local owner = redis.call('GETRANGE', KEYS[1], 29, 28 + n)
  if owner ~= ARGV[4] or tonumber(ARGV[5]) < exp then return owner end
  redis.call('SETRANGE', KEYS[1], 9, struct.pack('>i8>i8', exp, tonumber(ARGV[5])))
else
  redis.call('SETRANGE', KEYS[1], 9, struct.pack('>i8', exp))
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3], 'GT')
return 1
`,
		DeleteOwned: `
local v = redis.call('GETRANGE', KEYS[1], 0, 28 + string.len(ARGV[1]))
if string.len(v) < 29 or string.byte(v, 1) ~= 1 then return 0 end
local n = struct.unpack('>I4', v, 26)
if n ~= string.len(ARGV[1]) or string.sub(v, 30, 29 + n) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if struct.unpack('>i8', v, 10) > tonumber(ARGV[2]) then return 1 end
return 2
`,
		IndexAdd: `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return redis.call('HLEN', KEYS[1])
`,
		IndexRemove: `
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
`,
	}
}
