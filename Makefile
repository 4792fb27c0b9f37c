GO ?= go
GOFLAGS ?=
STATICCHECK_VERSION ?= v0.6.1

.PHONY: all build test deps lint bench demo fuzz clean

all: build

build:
	$(GO) build -o bin/ingot ./cmd/ingot

# The README's test command. Installs what the tests need first.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 75m ./...

deps:
	./.ci/deps

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Whole-program benchmarks against peer tools; results go to docs/BENCHMARKS.md.
bench: deps build
	@set -e; for b in bench/*.sh; do echo "== $$b"; bash "$$b"; done

demo:
	$(GO) run ./cmd/ingot demo

# Runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

clean:
	rm -rf bin
