module github.com/sessionkit/sessions/benchmarks

go 1.25.0

replace (
	github.com/sessionkit/sessions => ../
	github.com/sessionkit/sessions/mysqlstore => ../mysqlstore
	github.com/sessionkit/sessions/pgxstore => ../pgxstore
	github.com/sessionkit/sessions/redisstore => ../redisstore
	github.com/sessionkit/sessions/rueidisstore => ../rueidisstore
)

require (
	github.com/alexedwards/scs/postgresstore v0.0.0-20251002162104-209de6e426de
	github.com/alexedwards/scs/redisstore v0.0.0-20251002162104-209de6e426de
	github.com/alexedwards/scs/v2 v2.9.0
	github.com/go-sql-driver/mysql v1.10.1
	github.com/gomodule/redigo v1.9.3
	github.com/gorilla/sessions v1.4.0
	github.com/jackc/pgx/v5 v5.12.0
	github.com/redis/go-redis/v9 v9.22.0
	github.com/redis/rueidis v1.0.79
	github.com/sessionkit/sessions v0.1.0
	github.com/sessionkit/sessions/mysqlstore v0.1.0
	github.com/sessionkit/sessions/pgxstore v0.1.0
	github.com/sessionkit/sessions/redisstore v0.1.0
	github.com/sessionkit/sessions/rueidisstore v0.1.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/gorilla/securecookie v1.1.2 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
