#!/usr/bin/env bash
# Sets up what `make test-arm64` needs to cross-build the server for arm64 (aarch64) and run it under
# emulation on an x86_64 Debian 12, without changing the host's packages (no dpkg --add-architecture):
#   - Debian's cross compiler g++-aarch64-linux-gnu (an amd64 package, installed with apt);
#   - .deps/arm64/sysroot: the arm64 .debs of the libraries the build links (and everything they need at
#     run time, glibc included), resolved by apt for arm64 in a private state folder, downloaded and
#     unpacked, their absolute symlinks made relative so the folder can serve as qemu's root;
#   - .deps/arm64/qemu-aarch64: qemu-user 10 from Debian 13 (unpacked from its .deb, a static binary).
#     Debian 12's qemu 7.2 hands programs the host's x86 /proc/cpuinfo, and ONNX Runtime's CPU detection
#     then crashes while loading;
#   - .deps/arm64/onnxruntime: the arm64 library of the same npm onnxruntime-node release the x86 build
#     uses (scripts/fetch-onnxruntime.sh with ORT_ARCH=aarch64).
# Idempotent: does nothing for the parts already there.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/.deps/arm64"
SYSROOT="$DEST/sysroot"
# The -dev packages of BUILD_PKGS in install-deps.sh that have arm64 code, and protobuf-compiler-grpc, whose
# arm64 plugin gRPC's CMake config insists exists (the build runs the host's).
PKGS=(libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc prometheus-cpp-dev libevent-dev libsimdjson-dev
  libhttp-parser-dev nlohmann-json3-dev libssl-dev libcurl4-openssl-dev libpugixml-dev libgtest-dev libgmock-dev libc6
  libstdc++6)
QEMU_VERSION="${QEMU_VERSION:-1:10.0.13+ds-0+deb13u1}"

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
  echo "arm64-sysroot: apt-get install g++-aarch64-linux-gnu"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu
fi

# apt-get on a private state folder: `arch` packages of `suite`, nothing of the host's apt state touched.
private_apt() {
  local dir="$1" arch="$2" suites="$3"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  : >"$dir/status"
  : >"$dir/sources.list"
  for s in $suites; do
    local uri=http://deb.debian.org/debian
    [[ "$s" == *-security ]] && uri=http://deb.debian.org/debian-security
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $s main" >>"$dir/sources.list"
  done
  APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::State::status=$dir/status" -o "Dir::Cache=$dir/cache"
    -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o "APT::Sandbox::User=root"
    -o "Debug::NoLocking=1" -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null")
  apt-get "${APT_OPTS[@]}" -qq update
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The sysroot is rebuilt when the package list changes (its stamp holds the list).
if [[ "$(cat "$SYSROOT/.complete" 2>/dev/null)" != "${PKGS[*]}" ]]; then
  echo "arm64-sysroot: arm64 libraries into $SYSROOT"
  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT"
  private_apt "$TMP/bookworm" arm64 "bookworm bookworm-updates bookworm-security"
  apt-get "${APT_OPTS[@]}" -qq -y --no-install-recommends --download-only install "${PKGS[@]}"
  for deb in "$TMP"/bookworm/cache/archives/*.deb; do
    # glibc's headers and link scripts come with the cross compiler (libc6-dev-arm64-cross); the copies
    # here would point the linker at absolute /lib paths of the host. glibc's run-time part stays (qemu).
    case "$(basename "$deb")" in
      libc6-dev_* | libc-dev-bin_* | linux-libc-dev_* | libcrypt-dev_* | libnsl-dev_* | libtirpc-dev_*) continue ;;
    esac
    dpkg-deb -x "$deb" "$SYSROOT"
  done
  # Absolute links (libz.so -> /lib/aarch64-linux-gnu/...) would point into the host: make them relative.
  while IFS= read -r link; do
    target="$(readlink "$link")"
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
  done < <(find "$SYSROOT" -type l -lname '/*')
  echo "${PKGS[*]}" >"$SYSROOT/.complete"
fi

if [[ ! -x "$DEST/qemu-aarch64" ]]; then
  echo "arm64-sysroot: qemu-user $QEMU_VERSION (Debian 13) into $DEST"
  private_apt "$TMP/trixie" amd64 trixie
  (cd "$TMP" && apt-get "${APT_OPTS[@]}" -qq download "qemu-user=$QEMU_VERSION")
  dpkg-deb --fsys-tarfile "$TMP"/qemu-user_*.deb | tar -x -C "$TMP" ./usr/bin/qemu-aarch64
  install -m 755 "$TMP/usr/bin/qemu-aarch64" "$DEST/qemu-aarch64"
fi

ORT_ARCH=aarch64 ONNXRUNTIME_ROOT="$DEST/onnxruntime" "$ROOT/scripts/fetch-onnxruntime.sh"
echo "arm64-sysroot: ready in $DEST"
