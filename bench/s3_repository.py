"""make bench-s3: models from object storage, measured against a real S3-compatible server on loopback (moto's
server mode with signature checks, tests/e2e/s3_store.py):

- upload → served: a new version of breast_cancer uploaded with boto3 while the server polls at its default
  interval (2 s); the time until the first successful prediction that names the new version (median of
  --repeats uploads);
- download: one version holding a --large-mib file beside the model, loaded from the bucket: throughput from the
  server's own `model version downloaded` line, and the server's peak RSS growth while it downloads (the file is
  streamed to disk, so the growth stays far below its size).

Writes docs/benchmarks/s3-repository.json and prints a Markdown table. Loopback only, bounded in time.
Usage: bench/s3_repository.py [--repeats N] [--large-mib M]"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import MODELS, Server  # noqa: E402
from s3_store import Store  # noqa: E402

BODY = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": [0.0] * 30}]}


def peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def upload_to_served(store, work, repeats):
    model = MODELS / "breast_cancer"
    store.upload(model, "repo/breast_cancer")
    server = Server(store.url(), ["--model-control-mode", "poll", "--repository-cache-dir", str(work / "cache")],
                    tmp_path=work, env=store.env()).wait_ready()
    name = requests.get(f"{server.http}/v2/models/breast_cancer", timeout=5).json()["inputs"][0]["name"]
    body = {"inputs": [{**BODY["inputs"][0], "name": name}]}
    seconds = []
    try:
        for version in range(2, 2 + repeats):
            time.sleep(0.7 * version % 2)  # uploads land at different points of the poll cycle
            started = time.monotonic()
            store.s3.upload_file(str(model / "1" / "model.onnx"), "models", f"repo/breast_cancer/{version}/model.onnx")
            url = f"{server.http}/v2/models/breast_cancer/versions/{version}/infer"
            while requests.post(url, json=body, timeout=5).status_code != 200:
                if time.monotonic() - started > 60:
                    raise RuntimeError(f"version {version} not served within 60 s")
                time.sleep(0.01)
            seconds.append(time.monotonic() - started)
    finally:
        server.stop()
    return seconds


def download(store, work, large_mib):
    model = MODELS / "breast_cancer"
    store.upload(model, "big/breast_cancer")
    big = work / "weights.bin"
    with open(big, "wb") as f:
        for _ in range(large_mib):
            f.write(os.urandom(1 << 20))
    store.s3.upload_file(str(big), "models", "big/breast_cancer/1/weights.bin")
    big.unlink()
    server = Server(store.url(prefix="big"), ["--repository-cache-dir", str(work / "cache-big")], tmp_path=work,
                    env=store.env())
    try:
        server.wait_ready(timeout=600)
        line = next(l for l in server.log_lines() if l["msg"] == "model version downloaded")
        rss = peak_rss_mib(server.proc.pid)
    finally:
        server.stop()
    return {"bytes": line["bytes"], "seconds": line["seconds"], "mib_per_s": line["bytes"] / line["seconds"] / 2**20,
            "peak_rss_mib": rss}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--large-mib", type=int, default=512)
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-s3-"))
    store = Store(work)
    try:
        served = upload_to_served(store, work, args.repeats)
        big = download(store, work, args.large_mib)
    finally:
        store.stop()
    # The same server on the same model from a local directory: its peak RSS is the baseline of the growth.
    local = Server(MODELS, [], tmp_path=work).wait_ready()
    baseline = peak_rss_mib(local.proc.pid)
    local.stop()
    result = {"date": time.strftime("%Y-%m-%d"), "repeats": args.repeats, "upload_to_served_s": served,
              "median_upload_to_served_s": statistics.median(served), "download": big,
              "local_peak_rss_mib": baseline, "args": vars(args)}
    out = ROOT / "docs" / "benchmarks" / "s3-repository.json"
    out.write_text(json.dumps(result, indent=1))
    print("| measure | value |\n|---|---|")
    print(f"| upload → first prediction of the new version (poll 2 s), median of {args.repeats} | "
          f"{statistics.median(served):.2f} s (min {min(served):.2f}, max {max(served):.2f}) |")
    print(f"| download of a {big['bytes'] / 2**20:.0f} MiB version from the store on loopback | "
          f"{big['seconds']:.2f} s, {big['mib_per_s']:.0f} MiB/s |")
    print(f"| server peak RSS after that download / the same server on the local directory | "
          f"{big['peak_rss_mib']:.0f} MiB / {baseline:.0f} MiB |")


if __name__ == "__main__":
    main()
