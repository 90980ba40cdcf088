# The two setup commands are `make run` and `make test`; both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
MODEL_REPOSITORY ?= models/repository
SERVER_ARGS ?=
PYTEST_ARGS ?=

.PHONY: all deps deps-test build run test lint format sanitize tsan mutations test-arm64 clean models monitor \
  bench bench-statistics bench-trees bench-security bench-s3 test-triton fuzz soak bench-capacity bench-overload \
  bench-observers trace-timeline

all: build

deps:
	./scripts/install-deps.sh build

deps-test:
	./scripts/install-deps.sh test

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR)

# Polls the repository, so a model dropped into it (or a new version) is served within two seconds. Repository
# load/unload requests stay refused (--model-control-mode=explicit allows them; docs/security.md).
run: build
	./$(BUILD_DIR)/inference-server --model-repository $(MODEL_REPOSITORY) --model-control-mode poll $(SERVER_ARGS)

test: deps-test build lint
	ctest --test-dir $(BUILD_DIR) --output-on-failure
	PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" INFERENCE_SERVER=$(BUILD_DIR)/inference-server \
	  PYTHONPATH=tests .venv/bin/python -m pytest -p no_silent_skips -rs tests/e2e tests/deploy -q $(PYTEST_ARGS)

# Both directions of the Triton drop-in against real NVIDIA Triton with its own ONNX Runtime backend (the
# benchmark peer, which no registry here can install): the bundled repository loads in it unchanged and both
# servers answer alike (tests/e2e/test_triton_peer.py; docs/testing.md).
TRITON_PEER ?= $(CURDIR)/../shared/peers/triton-ort
test-triton: deps-test build
	TRITON_PEER=$(TRITON_PEER) TRITON_PEER_TEST=1 PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" \
	  INFERENCE_SERVER=$(BUILD_DIR)/inference-server PYTHONPATH=tests .venv/bin/python -m pytest -p no_silent_skips -rs \
	  tests/e2e/test_triton_peer.py -q $(PYTEST_ARGS)

# Throughput and latency next to Triton, the seed's design (docs/benchmarks.md): about 20 minutes, loopback only.
bench: build
	scripts/install-deps.sh bench
	TRITON_PEER=$(TRITON_PEER) PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" .venv/bin/python bench/run.py $(BENCH_ARGS)

# Tree ensembles (#13): this server's tree engine next to LightGBM, XGBoost, ONNX Runtime, treelite and lleaves,
# one thread, batch 1/64/4096 (docs/benchmarks.md#tree-ensembles). The first run trains the models (minutes).
bench-trees: build
	scripts/install-deps.sh bench
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/python bench/trees/run.py $(BENCH_ARGS)

# What TLS and bearer tokens cost (docs/benchmarks.md#security): this server plaintext, over TLS and with a token,
# and Triton with --grpc-use-ssl, at c=1/8/64 over v2 gRPC and REST; handshakes; the token check. ~15 minutes.
bench-security: build
	scripts/install-deps.sh bench
	TRITON_PEER=$(TRITON_PEER) PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" .venv/bin/python bench/security.py $(BENCH_ARGS)

# Models from object storage (docs/model-repository.md#object-storage): upload -> served at the default poll
# interval, download throughput and memory, against moto's S3 server on loopback. ~3 minutes.
# The soak (bench/soak.py; docs/reliability.md#soak): mixed traffic at 70 % of the measured peak for SOAK_SECONDS
# with a hot reload and an unload/load in the middle; fails on any unexpected error, RSS drift or descriptor
# growth. CI runs it for 60 s.
SOAK_SECONDS ?= 600
soak: deps-test build
	INFERENCE_SERVER=$(BUILD_DIR)/inference-server .venv/bin/python bench/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

# What idle connections cost (bench/capacity.py; docs/reliability.md#capacity): 10,000 HTTP, 1,000 gRPC.
bench-capacity: deps-test build
	INFERENCE_SERVER=$(BUILD_DIR)/inference-server .venv/bin/python bench/capacity.py $(BENCH_ARGS)

# Overload (bench/overload.py; docs/reliability.md#overload): 10x the measured capacity on v2 REST and v2 gRPC
# (h2load, open loop), then the load taken away. About 1 minute.
bench-overload: deps-test build
	INFERENCE_SERVER=$(BUILD_DIR)/inference-server .venv/bin/python bench/overload.py $(BENCH_ARGS)

# What tracing and payload logging cost a request (bench/observers.py; docs/benchmarks.md#tracing-and-payload-logging):
# both off, each for every request and for 1 % of them, to nginx on loopback; h2load at c=1 and c=64. About 3 minutes.
bench-observers: deps-test build
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/python bench/observers.py $(BENCH_ARGS)

# One real trace through Envoy into the server, drawn (bench/trace_timeline.py; docs/metrics.md#tracing).
trace-timeline: deps-test build
	PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" INFERENCE_SERVER=$(BUILD_DIR)/inference-server \
	  .venv/bin/python bench/trace_timeline.py

bench-s3: build
	scripts/install-deps.sh test
	PATH="$(CURDIR)/.venv/bin:$$PATH" INFERENCE_SERVER=$(BUILD_DIR)/inference-server .venv/bin/python bench/s3_repository.py $(BENCH_ARGS)

# Per-request cost of the statistics behind Triton's statistics extension and metric names, next to the
# Prometheus calls the request path already makes (docs/metrics.md#cost).
bench-statistics: build
	./$(BUILD_DIR)/statistics_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

# clang-format and clang-tidy on src/ (.clang-format, .clang-tidy); `make format` rewrites the files.
lint: deps-test build
	tests/build/lint.sh $(BUILD_DIR)

format:
	git ls-files 'src/*.cc' 'src/*.h' | xargs clang-format -i

# libFuzzer on every parser of outside input (clang, ASan, UBSan), FUZZ_SECONDS (20) per target from the committed seed
# corpus (tests/fuzz; docs/testing.md#fuzzing). CI runs it.
fuzz: deps-test
	./scripts/fuzz.sh

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

# The unit tests and the concurrency-heavy end-to-end tests (batching, reload under load, drain, cancellation,
# connection limits, model load under traffic, health, payload logging's sender thread, tracing's exporter) against a
# ThreadSanitizer build; any report fails
# (the server exits 66); the fuzz corpora replay elsewhere (one thread each). Suppressions, each justified, for third-party code only: tests/build/tsan.supp.
# -U__SANITIZE_THREAD__: protobuf's headers change a class's layout under TSan, which Debian's libprotobuf
# (built without it) does not. CI runs it (docs/testing.md#threadsanitizer).
TSAN_DIR ?= build-tsan
TSAN_E2E = test_batching.py test_concurrency.py test_lifecycle.py test_cancellation.py test_model_control.py \
  test_hostile.py test_health.py test_payload_log.py test_tracing.py
tsan: deps-test
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -U__SANITIZE_THREAD__" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread"
	cmake --build $(TSAN_DIR) --target core_test auth_test trees_test frontends_test inference-server
	TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/build/tsan.supp" \
	  ctest --test-dir $(TSAN_DIR) --output-on-failure -E "frontend_seam|fuzz_corpus_"
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/build/tsan.supp" PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" \
	  SERVING_SANITIZER=tsan INFERENCE_SERVER=$(TSAN_DIR)/inference-server PYTHONPATH=tests \
	  .venv/bin/python -m pytest -p no_silent_skips -rs $(addprefix tests/e2e/,$(TSAN_E2E)) -q $(PYTEST_ARGS)

# The server cross-built for arm64 (what Apple Silicon under colima runs), its unit tests and the end-to-end
# suite run under qemu-user (scripts/arm64-sysroot.sh installs the cross compiler and fetches the rest
# without changing the host's packages; docs/testing.md#arm64). CI runs it after `make test`.
ARM64_DIR ?= build-arm64
ARM64_DEPS = $(CURDIR)/.deps/arm64
test-arm64: deps-test build
	./scripts/arm64-sysroot.sh
	cmake -S . -B $(ARM64_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	  -DSERVING_ARM64_SYSROOT=$(ARM64_DEPS)/sysroot -DSERVING_QEMU=$(ARM64_DEPS)/qemu-aarch64 \
	  -DONNXRUNTIME_ROOT=$(ARM64_DEPS)/onnxruntime
	cmake --build $(ARM64_DIR)
	ctest --test-dir $(ARM64_DIR) --output-on-failure
	ARM64_BUILD_DIR=$(CURDIR)/$(ARM64_DIR) SERVING_EMULATED=qemu-aarch64 INFERENCE_SERVER=tests/arm64/inference-server \
	  X86_SERVER=$(CURDIR)/$(BUILD_DIR)/inference-server \
	  PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.deps/bin:$$PATH" PYTHONPATH=tests .venv/bin/python -m pytest -p no_silent_skips -rs \
	  $(ARM64_E2E) -q $(PYTEST_ARGS)

# The whole end-to-end suite runs against the arm64 server (about five minutes). Tests that measure what
# qemu-user fakes carry @pytest.mark.not_under_emulation(reason) and are reported skipped with it; the
# deliberately slow model gets fewer layers under emulation (tests/e2e/test_lifecycle.py).
ARM64_E2E ?= tests/e2e

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
