#!/usr/bin/env bash
# make fuzz: builds every libFuzzer target of tests/fuzz (one per parser of outside input: the tree model files,
# the tokens file and Authorization header, S3 listings, REST bodies v1 and v2 with the binary extension, v2
# gRPC messages, the JSON nesting scan, config.pbtxt) with clang, AddressSanitizer and UBSan through CMake
# (SERVING_FUZZ; ccache applies), and runs each for FUZZ_SECONDS (default 20) from its committed seed corpus
# (tests/fuzz/corpus/<target>). New inputs found go to a scratch copy of the corpus, not into git; a crash, leak,
# timeout or out-of-memory leaves its input in build-fuzz/ and fails the run. FUZZ_TARGETS narrows the list;
# FUZZ_RUNS stops each target after that many executions (the long run: FUZZ_RUNS=10000000 FUZZ_SECONDS=3600).
# docs/reliability.md#fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-20}"
OUT=build-fuzz
CXX="${FUZZ_CXX:-clang++-14}"
CC="${FUZZ_CC:-clang-14}"
read -r -a TARGETS <<< "${FUZZ_TARGETS:-lightgbm xgboost xgboost_ubj auth s3_list json_limits v2_rest v2_grpc v1_rest model_config http tls_files trace_context}"
mkdir -p "$OUT"
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S . -B "$OUT" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_COMPILER="$CC" \
  -DSERVING_FUZZ=ON -DSERVING_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_C_FLAGS="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > "$OUT/configure.log"
echo "fuzz: building ${TARGETS[*]}"
cmake --build "$OUT" --target "${TARGETS[@]/%/_fuzz}"
rm -f "$OUT"/crash-* "$OUT"/leak-* "$OUT"/oom-* "$OUT"/timeout-*
for target in "${TARGETS[@]}"; do
  work="$OUT/corpus-$target"
  rm -rf "$work" && mkdir -p "$work"
  cp tests/fuzz/corpus/"$target"/* "$work"/
  dict=()
  [[ -f "tests/fuzz/$target.dict" ]] && dict=(-dict="../tests/fuzz/$target.dict")
  echo "fuzz: ${target}_fuzz for ${SECONDS_EACH}s"
  # The fuzzer's own exit status is not the verdict: the artifacts it leaves are (checked below).
  (
    cd "$OUT"
    ASAN_OPTIONS=detect_leaks=1 "./${target}_fuzz" -max_total_time="$SECONDS_EACH" -runs="${FUZZ_RUNS:--1}" \
      -max_len=65536 -timeout=10 "${dict[@]}" \
      -rss_limit_mb=2048 -print_final_stats=1 "corpus-$target" > "fuzz-$target.log" 2>&1 || true
  )
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|cov: .*ft:.*corp:.*exec/s|ERROR|SUMMARY|Test unit written" \
    "$OUT/fuzz-$target.log" | grep -vE "^#[0-9]+\s+(pulse|NEW|REDUCE)" | tail -4 || true
  if compgen -G "$OUT/crash-*" > /dev/null || compgen -G "$OUT/leak-*" > /dev/null || compgen -G "$OUT/oom-*" > /dev/null ||
    compgen -G "$OUT/timeout-*" > /dev/null; then
    echo "fuzz: ${target}_fuzz found a failing input: $(ls "$OUT"/crash-* "$OUT"/leak-* "$OUT"/oom-* "$OUT"/timeout-* 2>/dev/null)" >&2
    exit 1
  fi
done
echo "fuzz: no crash"
