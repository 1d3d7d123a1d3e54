module github.com/sessionkit/sessions/rueidisstore

go 1.25.0

require (
	github.com/redis/rueidis v1.0.79
	github.com/sessionkit/sessions v0.1.0
)

require golang.org/x/sys v0.47.0 // indirect

replace github.com/sessionkit/sessions => ../
