# The two setup commands are `make run` and `make test`; both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
MODEL_REPOSITORY ?= models/repository
SERVER_ARGS ?=
PYTEST_ARGS ?=

.PHONY: all deps deps-test build run test lint format sanitize mutations clean models monitor

all: build

deps:
	./scripts/install-deps.sh build

deps-test:
	./scripts/install-deps.sh test

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR)

run: build
	./$(BUILD_DIR)/inference-server --model-repository $(MODEL_REPOSITORY) $(SERVER_ARGS)

test: deps-test build lint
	ctest --test-dir $(BUILD_DIR) --output-on-failure
	PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" INFERENCE_SERVER=$(BUILD_DIR)/inference-server \
	  PYTHONPATH=tests .venv/bin/python -m pytest -p no_silent_skips -rs tests/e2e tests/deploy -q $(PYTEST_ARGS)

# clang-format and clang-tidy on src/ (.clang-format, .clang-tidy); `make format` rewrites the files.
lint: deps-test build
	tests/build/lint.sh $(BUILD_DIR)

format:
	git ls-files 'src/*.cc' 'src/*.h' | xargs clang-format -i

# Breaks key behaviours one at a time in the source and requires the test pinning each to fail
# (tests/mutations.py; docs/testing.md). Restores the source and the build afterwards. CI runs it.
mutations: deps-test build
	.venv/bin/python tests/mutations.py

# The unit and end-to-end tests again against an AddressSanitizer + UndefinedBehaviorSanitizer build
# (leak checking off: gRPC and ONNX Runtime keep process-lifetime singletons). CI runs it after `make test`.
ASAN_DIR ?= build-asan
sanitize: deps-test
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
	cmake --build $(ASAN_DIR)
	ASAN_OPTIONS=detect_leaks=0 ctest --test-dir $(ASAN_DIR) --output-on-failure
	ASAN_OPTIONS=detect_leaks=0 PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" SERVING_SANITIZER=asan \
	  INFERENCE_SERVER=$(ASAN_DIR)/inference-server PYTHONPATH=tests .venv/bin/python -m pytest -p no_silent_skips -rs \
	  tests/e2e -q $(PYTEST_ARGS)

# Prometheus (Debian's) on loopback scraping a local server (`make run` in another terminal) with the
# same rule files as the cluster: http://127.0.0.1:$(MONITOR_PORT)
MONITOR_PORT ?= 9090
monitor:
	./scripts/install-deps.sh monitor
	mkdir -p $(BUILD_DIR)/monitor
	PATH="$(CURDIR)/.deps/bin:$$PATH" prometheus --config.file=deploy/k8s/base/monitoring/prometheus/prometheus.local.yml \
	  --storage.tsdb.path=$(BUILD_DIR)/monitor/data --web.listen-address=127.0.0.1:$(MONITOR_PORT)

# Re-trains the bundled example models (needs the test venv).
models: deps-test
	.venv/bin/python models/generate/train.py --out $(MODEL_REPOSITORY)

clean:
	rm -rf $(BUILD_DIR)
