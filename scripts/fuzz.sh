#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets of the tree model parsers and of the authorization inputs (the tokens
# file, Triton's restricted-API values, the Authorization header) and of the object store's listing replies
# (clang, AddressSanitizer, UBSan) and runs each
# for FUZZ_SECONDS (default 45) from its committed seed corpus (tests/fuzz/corpus/*). New inputs found go to a
# scratch copy of the corpus, not into git; a crash leaves its input in build-fuzz/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-45}"
OUT=build-fuzz
CXX="${FUZZ_CXX:-clang++-14}"
mkdir -p "$OUT"
SOURCES=(src/backends/trees/forest.cc src/backends/trees/evaluator.cc src/backends/trees/lightgbm_model.cc src/backends/trees/xgboost_model.cc
  src/core/status.cc tests/fuzz/trees_fuzz.cc)
for target in lightgbm xgboost xgboost_ubj; do
  define="FUZZ_$(echo "$target" | tr '[:lower:]' '[:upper:]')"
  echo "fuzz: building ${target}_fuzz"
  "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D"$define" -Isrc \
    "${SOURCES[@]}" -o "$OUT/${target}_fuzz"
done
echo "fuzz: building auth_fuzz"
"$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
  src/auth/authorizer.cc src/auth/token_file.cc src/auth/restricted_api.cc src/auth/file_watch.cc src/core/status.cc \
  src/observability/logger.cc tests/fuzz/auth_fuzz.cc -lcrypto -o "$OUT/auth_fuzz"
echo "fuzz: building s3_list_fuzz"
"$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
  src/sources/s3/s3_xml.cc src/core/status.cc tests/fuzz/s3_list_fuzz.cc -lpugixml -o "$OUT/s3_list_fuzz"
for target in lightgbm xgboost xgboost_ubj auth s3_list; do
  work="$OUT/corpus-$target"
  rm -rf "$work" && mkdir -p "$work"
  cp tests/fuzz/corpus/"$target"/* "$work"/
  echo "fuzz: ${target}_fuzz for ${SECONDS_EACH}s"
  # The fuzzer's own exit status is not the verdict: the artifacts it leaves are (checked below).
  (
    cd "$OUT"
    ASAN_OPTIONS=detect_leaks=1 "./${target}_fuzz" -max_total_time="$SECONDS_EACH" -max_len=65536 \
      -rss_limit_mb=2048 -print_final_stats=1 "corpus-$target" > "fuzz-$target.log" 2>&1 || true
  )
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" "$OUT/fuzz-$target.log" || true
  if compgen -G "$OUT/crash-*" > /dev/null || compgen -G "$OUT/leak-*" > /dev/null || compgen -G "$OUT/oom-*" > /dev/null ||
    compgen -G "$OUT/timeout-*" > /dev/null; then
    echo "fuzz: ${target}_fuzz found a failing input: $(ls "$OUT"/crash-* "$OUT"/leak-* "$OUT"/oom-* "$OUT"/timeout-* 2>/dev/null)" >&2
    exit 1
  fi
done
echo "fuzz: no crash"
