# Provisional; see deploy/test/services.sh for the test services.
.PHONY: test
test:
	bash deploy/test/services.sh run -- go test -count=1 -timeout 25m ./...
