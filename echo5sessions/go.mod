module github.com/sessionkit/sessions/echo5sessions

go 1.25.0

require (
	github.com/labstack/echo/v5 v5.4.6
	github.com/sessionkit/sessions v0.1.0
)

require golang.org/x/time v0.15.0 // indirect

replace github.com/sessionkit/sessions => ../
