#!/usr/bin/env bash
# The project's conventions, enforced: clang-format (.clang-format) and clang-tidy (.clang-tidy) on every
# C++ file of src/ (Debian's clang-format and clang-tidy 14). Needs the build's compile_commands.json.
# Usage: tests/build/lint.sh BUILD_DIR
set -euo pipefail
build_dir="${1:?usage: lint.sh BUILD_DIR}"
cd "$(dirname "$0")/../.."
mapfile -t files < <(git ls-files 'src/*.cc' 'src/*.h')
echo "lint: clang-format on ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}"
echo "lint: clang-tidy"
# -Wno-overloaded-virtual: gRPC's generated callback services hide the base class's overloads by design.
run-clang-tidy -p "$build_dir" -j "$(nproc)" -quiet -extra-arg=-Wno-overloaded-virtual -extra-arg=-Wthread-safety "$PWD/src/.*" \
  > "$build_dir/clang-tidy.log" 2>&1 || { grep -E "(error|warning):" "$build_dir/clang-tidy.log" | sort -u; exit 1; }
echo "lint: clean"
