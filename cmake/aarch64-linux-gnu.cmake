# Cross-compiling for arm64 (aarch64) on an x86_64 Debian 12 host, without touching the host's packages:
# Debian's cross compiler (g++-aarch64-linux-gnu) plus a private folder of arm64 libraries (the -dev and
# runtime packages the build needs, unpacked by scripts/arm64-sysroot.sh). protoc and grpc_cpp_plugin
# stay the host's (they generate the same code). Tests run under qemu-user with that folder as their root.
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#     -DSERVING_ARM64_SYSROOT=$PWD/.deps/arm64/sysroot -DONNXRUNTIME_ROOT=$PWD/.deps/onnxruntime-arm64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(SERVING_ARM64_SYSROOT "$ENV{SERVING_ARM64_SYSROOT}" CACHE PATH "arm64 libraries unpacked by scripts/arm64-sysroot.sh")
# try_compile projects see the same folder.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SERVING_ARM64_SYSROOT)
if(NOT SERVING_ARM64_SYSROOT)
  message(FATAL_ERROR "set SERVING_ARM64_SYSROOT (scripts/arm64-sysroot.sh prints it)")
endif()
# The cross compiler's own glibc (libc6-dev-arm64-cross) is found under its prefix (civetweb looks for libdl).
set(CMAKE_FIND_ROOT_PATH "${SERVING_ARM64_SYSROOT}" /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # protoc, grpc_cpp_plugin: the host's
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Debian puts a library's architecture-specific headers (OpenSSL's opensslconf.h, ...) in the multiarch folder,
# which a compiler without --sysroot does not search.
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES "${SERVING_ARM64_SYSROOT}/usr/include/aarch64-linux-gnu")

# The libraries' own dependencies (abseil under gRPC, ...) are found at link time through -rpath-link.
set(_lib "${SERVING_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_lib} -Wl,-rpath-link,${SERVING_ARM64_SYSROOT}/lib/aarch64-linux-gnu")
set(ENV{PKG_CONFIG_LIBDIR} "${_lib}/pkgconfig:${SERVING_ARM64_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${SERVING_ARM64_SYSROOT}")

# ctest runs the test binaries under qemu with the folder as their root (dynamic loader and libraries).
# Debian 12's qemu 7.2 hands ONNX Runtime the host's x86 /proc/cpuinfo; scripts/arm64-sysroot.sh fetches a
# newer qemu that emulates an arm64 one. neoverse-n1: a CPU ONNX Runtime recognises (no warning on stderr).
set(SERVING_QEMU "qemu-aarch64" CACHE FILEPATH "qemu-user for aarch64")
set(CMAKE_CROSSCOMPILING_EMULATOR "${SERVING_QEMU};-L;${SERVING_ARM64_SYSROOT};-cpu;neoverse-n1")
