#!/usr/bin/env bash
# Fetches ONNX Runtime into .deps/onnxruntime/{include,lib} (or $ONNXRUNTIME_ROOT when set and empty).
#
# Where it comes from (no registry here serves Microsoft's release archive):
#   - the shared library: Microsoft's npm package `onnxruntime-node` (bin/napi-v6/linux/<arch>/libonnxruntime.so.1),
#     unpacked without running its install script;
#   - the C/C++ API headers: Debian's `libonnxruntime-dev` (trixie), downloaded as a .deb and unpacked only
#     (nothing is installed; Debian 12 has no onnxruntime package). The ORT C API is versioned and ABI-stable,
#     so headers of API version N work with any newer library.
# Idempotent: does nothing when both are already there.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.30.0}"
ORT_HEADERS_DEB_VERSION="${ORT_HEADERS_DEB_VERSION:-1.21.0+dfsg-1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${ONNXRUNTIME_ROOT:-$ROOT/.deps/onnxruntime}"

if [[ -f "$DEST/include/onnxruntime_cxx_api.h" && -f "$DEST/lib/libonnxruntime.so" ]]; then
  exit 0
fi

# ORT_ARCH (x86_64 or aarch64) fetches another architecture's library, for cross builds (make test-arm64).
case "${ORT_ARCH:-$(uname -m)}" in
  x86_64 | amd64) NODE_ARCH=x64 DEB_ARCH=amd64 ;;
  aarch64 | arm64) NODE_ARCH=arm64 DEB_ARCH=arm64 ;;
  *) echo "fetch-onnxruntime: unsupported architecture ${ORT_ARCH:-$(uname -m)}" >&2; exit 1 ;;
esac

for tool in npm apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || { echo "fetch-onnxruntime: '$tool' is required" >&2; exit 1; }
done

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$DEST/include" "$DEST/lib"

echo "fetch-onnxruntime: library from npm onnxruntime-node@$ORT_VERSION ($NODE_ARCH)"
(cd "$TMP" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tar -xzf "$TMP/onnxruntime-node-$ORT_VERSION.tgz" -C "$TMP" \
  "package/bin/napi-v6/linux/$NODE_ARCH/libonnxruntime.so.1"
cp "$TMP/package/bin/napi-v6/linux/$NODE_ARCH/libonnxruntime.so.1" "$DEST/lib/"
ln -sf libonnxruntime.so.1 "$DEST/lib/libonnxruntime.so"

echo "fetch-onnxruntime: headers from Debian libonnxruntime-dev $ORT_HEADERS_DEB_VERSION"
mkdir -p "$TMP/apt/lists/partial" "$TMP/apt/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
  >"$TMP/apt/sources.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$TMP/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$TMP/apt/lists" -o "Dir::Cache=$TMP/apt/cache" -o "APT::Architecture=$DEB_ARCH"
  -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
apt-get "${APT_OPTS[@]}" -qq update
(cd "$TMP" && apt-get "${APT_OPTS[@]}" -qq download "libonnxruntime-dev=$ORT_HEADERS_DEB_VERSION")
dpkg-deb -x "$TMP"/libonnxruntime-dev_*.deb "$TMP/deb"
cp -r "$TMP/deb/usr/include/onnxruntime/." "$DEST/include/"
echo "$ORT_VERSION (headers $ORT_HEADERS_DEB_VERSION)" >"$DEST/VERSION"
echo "fetch-onnxruntime: ready in $DEST"
