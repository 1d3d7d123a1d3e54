module github.com/sessionkit/sessions/reliability

go 1.25.0

require github.com/sessionkit/sessions v0.1.0

require github.com/anishathalye/porcupine v1.3.1

replace github.com/sessionkit/sessions => ../
