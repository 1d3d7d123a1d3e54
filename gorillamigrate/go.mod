module github.com/sessionkit/sessions/gorillamigrate

go 1.25.0

replace github.com/sessionkit/sessions => ../

require (
	github.com/gorilla/securecookie v1.1.2
	github.com/gorilla/sessions v1.4.0
	github.com/sessionkit/sessions v0.1.0
)
