#!/usr/bin/env python3
"""Checks the seam between frontends and core (docs/architecture.md) on what the compiler really read.

Every object built from src/frontends/ may include, of the project's own headers, only frontends/*,
the core's seam (core/inference_server.h and the plain types it includes), the authorization seam
(auth/authorizer.h) and the prometheus-free observability headers; nothing of the repository, model versions, the scheduler, backends or
prometheus-cpp, directly or through another header. The header lists come from Ninja's record of the
last build (`ninja -t deps`), so an include hidden two headers deep is caught too. Run by ctest.
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    src = pathlib.Path(args.source_dir, "src").resolve()
    out = subprocess.run(["ninja", "-C", args.build_dir, "-t", "deps"], check=True, capture_output=True,
                         text=True).stdout
    problems, objects, current = [], 0, None
    for line in out.splitlines():
        if not line.startswith(" "):
            obj = line.split(":", 1)[0]
            current = obj if "/src/frontends/" in obj else None
            objects += current is not None
            continue
        if current is None:
            continue
        header = pathlib.Path(line.strip())
        if FORBIDDEN_OUTSIDE.search(str(header)):
            problems.append(f"{current}: includes {header}")
            continue
        try:
            rel = header.resolve().relative_to(src).as_posix()
        except ValueError:
            continue  # system or generated header
        if rel.startswith("frontends/") or rel in ALLOWED_CORE:
            continue
        problems.append(f"{current}: includes {rel}")
    if objects == 0:
        print("check_seams: no frontend objects in the build's dependency log; build first", file=sys.stderr)
        return 1
    for p in problems:
        print(p)
    print(f"check_seams: {objects} frontend objects, {len(problems)} includes across the seam")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
