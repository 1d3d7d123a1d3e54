package rueidisstore

import (
	"github.com/redis/rueidis"
	"github.com/sessionkit/sessions/internal/redislua"
)

// The scripts are redisstore's (package internal/redislua documents their
// arguments and results), on the same record layout, so both stores can
// share a database.
//
// Client tracking covers scripts: every write makes Redis push an
// invalidation of KEYS[1] to every client holding it in its near-cache.
var (
	lua               = redislua.New("rueidisstore")
	createScript      = rueidis.NewLuaScript(lua.Create)
	updateScript      = rueidis.NewLuaScript(lua.Update)
	touchScript       = rueidis.NewLuaScript(lua.Touch)
	deleteOwnedScript = rueidis.NewLuaScript(lua.DeleteOwned)
	indexAddScript    = rueidis.NewLuaScript(lua.IndexAdd)
	indexRemoveScript = rueidis.NewLuaScript(lua.IndexRemove)
)
