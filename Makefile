# The two commands of README.md, and the steps behind them.
#   make run   installs what is needed, builds a release build and starts qx serve --demo
#   make demo  the offline demo trading session through the engine (figures and state hash)
#   make test  installs what is needed, builds with ASan+UBSan and runs every test
# Both are safe to re-run; builds are incremental.

JOBS ?= $(shell nproc)
SEED ?= 1
EVENTS ?= 1000000

.PHONY: run demo test deps build-release build-dev bench format format-check clean

deps:
	./scripts/install-deps.sh

build-release: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

build-dev: deps
	cmake --preset dev
	cmake --build --preset dev -j $(JOBS)

run:
	./scripts/run.sh

demo: build-release
	./build/release/app/qx demo --seed $(SEED) --events $(EVENTS)

test:
	./scripts/test.sh

bench: deps
	cmake --preset bench
	cmake --build --preset bench -j $(JOBS)
	./build/bench/bench/qx_engine_bench

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf build
