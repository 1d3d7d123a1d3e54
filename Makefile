# Every target works on a fresh clone with only Go installed; service-backed
# tests skip when PostgreSQL, MariaDB or Redis are not running locally.

.PHONY: demo test check

# demo runs the counter example on http://127.0.0.1:3000 (sessions in memory).
demo:
	cd examples && go run ./counter

# test runs every test of every module, with the race detector.
test:
	./scripts/test.sh

# check runs what CI runs besides the tests: gofmt, go vet, staticcheck and
# go mod tidy in every module.
check:
	./scripts/check.sh
