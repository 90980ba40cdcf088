# syntax=docker/dockerfile:1
# Multi-stage, multi-arch (linux/amd64, linux/arm64) image of the inference server.
#   docker buildx build --platform linux/amd64,linux/arm64 -t inference-server:dev .
# The build stage uses the project's own installer, so ONNX Runtime comes for the build platform's
# architecture (npm onnxruntime-node ships x64 and arm64 libraries).

FROM debian:12.12-slim AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY scripts/install-deps.sh scripts/fetch-onnxruntime.sh scripts/
RUN ./scripts/install-deps.sh build \
 && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY proto proto
COPY src src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSERVING_BUILD_TESTS=OFF \
 && cmake --build build \
 && mkdir -p /out/lib \
 && cp build/inference-server /out/ \
 && cp -L .deps/onnxruntime/lib/libonnxruntime.so.1 /out/lib/ \
 && cp build/envoy/inference_descriptor.pb /out/

# With BuildKit, `docker build --target envoy-descriptor --output <dir> .` exports the transcoder
# descriptor; scripts/restart.sh copies it out of the runtime image instead (any builder can do that).
FROM scratch AS envoy-descriptor
COPY --from=build /out/inference_descriptor.pb /

FROM debian:12.12-slim AS runtime
# Runtime libraries only (gRPC, protobuf, prometheus-cpp, libevent, simdjson, http-parser, libcurl and pugixml for
# object storage, CA certificates to verify it); no compilers, no package cache.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51=1.51.* libprotobuf32=3.21.* libprometheus-cpp-pull1.0=1.0.* libprometheus-cpp-core1.0=1.0.* \
      libevent-2.1-7=2.1.* libevent-pthreads-2.1-7=2.1.* libevent-openssl-2.1-7=2.1.* libssl3=3.0.* \
      libsimdjson14=3.0.* libhttp-parser2.9=2.9.* libcurl4=7.88.* libpugixml1v5=1.13.* ca-certificates=2025* \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 inference \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin inference
COPY --from=build /out/lib/libonnxruntime.so.1 /usr/local/lib/
COPY --from=build /out/inference-server /usr/local/bin/inference-server
COPY --from=build /out/inference_descriptor.pb /usr/local/share/inference-server/inference_descriptor.pb
COPY models/repository /models
RUN ldconfig && /usr/local/bin/inference-server --help > /dev/null
USER 10001:10001
EXPOSE 50051 8080 8002
# Works with a read-only root filesystem: the server writes nothing but stdout.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/inference-server"]
CMD ["--model-repository=/models"]
