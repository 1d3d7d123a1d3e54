package redisstore

import (
	"github.com/redis/go-redis/v9"
	"github.com/sessionkit/sessions/internal/redislua"
)

// The scripts, shared with rueidisstore (package internal/redislua
// documents their arguments and results).
var (
	lua               = redislua.New("redisstore")
	createScript      = redis.NewScript(lua.Create)
	updateScript      = redis.NewScript(lua.Update)
	touchScript       = redis.NewScript(lua.Touch)
	deleteOwnedScript = redis.NewScript(lua.DeleteOwned)
	indexAddScript    = redis.NewScript(lua.IndexAdd)
	indexRemoveScript = redis.NewScript(lua.IndexRemove)
)
