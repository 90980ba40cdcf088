#!/usr/bin/env python3
"""Checks the seams (docs/architecture.md) on what the compiler really read.

1. Frontends and core. Every object built from src/frontends/ may include, of the project's own headers, only frontends/*,
the core's seam (core/inference_server.h and the plain types it includes), the authorization seam
(auth/authorizer.h) and the prometheus-free observability headers; nothing of the repository, model versions, the scheduler, backends or
prometheus-cpp, directly or through another header. The header lists come from Ninja's record of the
last build (`ninja -t deps`), so an include hidden two headers deep is caught too.
2. Core and the rest. No object built from src/core/ (tests and test doubles aside) includes a header of a
frontend, a backend, a repository source, the server, auth or tls: dependencies point into the core.
3. Core and storage. No core source reads the file system itself (directory listings, file reads, sizes,
times): model files come through core/repository_source.h, whose implementations live in src/sources/.
4. Core and backends' configuration. No core source names a backend, a platform or a backend's parameter
(outside comments): each backend registers its platform names and judges its own parameters
(core/backend.h), so a new backend needs no edit of the core.
5. The request path notifies, it does not measure. The objects of core/scheduler.cc and core/inference_server.cc
include no observability header but model_statistics.h (FailReason): metrics, Triton's statistics and the access
log are request observers (core/request_observer.h), and so is what comes next (tracing, payload logging).
Run by ctest.
"""
import argparse
import pathlib
import re
import subprocess
import sys

ALLOWED_CORE = {
    "core/inference_server.h",  # the seam
    "core/infer_request.h",
    "core/datatype.h",
    "core/model_signature.h",
    "core/model_status.h",
    "core/model_settings.h",
    "core/status.h",
    "core/mutex.h",  # the annotated mutex the seam's class holds
    "core/tensor.h",
    "observability/logger.h",
    "observability/model_statistics.h",
    "observability/transport_metrics.h",
    "observability/security_metrics.h",
    "auth/authorizer.h",  # the authorization seam every route and RPC passes, and the types it includes
    "auth/restricted_api.h",
    "auth/token_file.h",
    "auth/file_watch.h",
    "tls/tls_context.h",  # the HTTP listener's TLS context
}
FORBIDDEN_OUTSIDE = re.compile(r"/prometheus/")
OUTSIDE_CORE = ("frontends/", "backends/", "sources/", "server/", "auth/", "tls/")
FILE_SYSTEM_CALLS = re.compile(
    r"directory_iterator|ifstream|ofstream|fopen|\bopen\(|file_size|last_write_time|canonical\(|"
    r"is_directory|is_regular_file|exists\(")


BACKEND_WORDS = re.compile(
    r"onnx|lightgbm|xgboost|\"fil\"|\"trees\"|intra_op|inter_op|model_type|predict_proba|output_class|"
    r"is_classifier|\"threshold\"|tensorrt|\"python\"", re.IGNORECASE)


REQUEST_PATH = re.compile(r"/src/core/(scheduler|inference_server)\.cc\.o$")
REQUEST_PATH_OBSERVABILITY = {"observability/model_statistics.h"}


def is_core_product(rel: str) -> bool:
    return rel.startswith("core/") and not rel.startswith("core/testing/") and "_test." not in rel


def core_source_problems(src: pathlib.Path) -> list:
    problems = []
    for path in sorted(src.glob("core/*")):
        rel = path.relative_to(src).as_posix()
        if path.suffix not in (".cc", ".h") or not is_core_product(rel):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            if FILE_SYSTEM_CALLS.search(code):
                problems.append(f"src/{rel}:{n}: reads the file system itself: {line.strip()}")
            if BACKEND_WORDS.search(code):
                problems.append(f"src/{rel}:{n}: names a backend or its configuration: {line.strip()}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    src = pathlib.Path(args.source_dir, "src").resolve()
    out = subprocess.run(["ninja", "-C", args.build_dir, "-t", "deps"], check=True, capture_output=True,
                         text=True).stdout
    problems, objects, core_objects, request_path, current, rule = [], 0, 0, 0, None, None
    for line in out.splitlines():
        if not line.startswith(" "):
            obj = line.split(":", 1)[0]
            current, rule = obj, None
            if "/src/frontends/" in obj:
                rule, objects = "frontends", objects + 1
            elif REQUEST_PATH.search(obj):
                rule, core_objects, request_path = "request path", core_objects + 1, request_path + 1
            elif re.search(r"/src/core/[^/]+\.cc\.o$", obj) and "_test.cc" not in obj:
                rule, core_objects = "core", core_objects + 1
            continue
        if rule is None:
            continue
        header = pathlib.Path(line.strip())
        if not header.is_absolute():  # Ninja records paths relative to the build directory
            header = pathlib.Path(args.build_dir, header)
        if rule == "frontends" and FORBIDDEN_OUTSIDE.search(str(header)):
            problems.append(f"{current}: includes {header}")
            continue
        try:
            rel = header.resolve().relative_to(src).as_posix()
        except ValueError:
            continue  # system or generated header
        if rule == "frontends" and not (rel.startswith("frontends/") or rel in ALLOWED_CORE):
            problems.append(f"{current}: includes {rel}")
        if rule in ("core", "request path") and rel.startswith(OUTSIDE_CORE):
            problems.append(f"{current}: includes {rel}")
        if rule == "request path" and rel.startswith("observability/") and rel not in REQUEST_PATH_OBSERVABILITY:
            problems.append(f"{current}: includes {rel} (the request path tells its observers instead)")
    if objects == 0 or core_objects == 0 or request_path != 2:
        print("check_seams: no frontend, core or request path objects in the build's dependency log; build first",
              file=sys.stderr)
        return 1
    problems += core_source_problems(src)
    for p in problems:
        print(p)
    print(f"check_seams: {objects} frontend and {core_objects} core objects, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
