#!/usr/bin/env python3
"""Decoding cost of large KServe v2 JSON bodies: time to answer and the server's memory, per binary.

Starts each given server binary on loopback (a fresh process per body size, so peaks do not mix), posts a
well-formed v2 body of N rows x 30 FP32 numbers to breast_cancer (over max_batch_size, so the core refuses
it after decoding: what is timed is the transport and the JSON decoder), and prints a Markdown table:
median wall time of --runs posts, the server's peak RSS growth (VmHWM) and its RSS growth afterwards.

  .venv/bin/python bench/large_body.py --binary build/inference-server [--binary /tmp/old/build/inference-server]
"""
import argparse
import json
import os
import statistics
import sys
import time
import urllib.request

from serving import ROOT, Server, process_state

ROW = [17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4,
       0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656,
       0.7119, 0.2654, 0.4601, 0.1189]


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST")
    start = time.perf_counter()
    try:
        urllib.request.urlopen(req, timeout=300).read()
    except urllib.error.HTTPError as e:
        e.read()
    return time.perf_counter() - start


def measure(binary, rows, runs):
    server = Server(ROOT / "models" / "repository", binary=binary)
    url = server.http
    try:
        body = json.dumps({"inputs": [{"name": "X", "datatype": "FP32", "shape": [rows, 30],
                                       "data": [ROW] * rows}]}, separators=(",", ":")).encode()
        before = process_state(server.pid)["rss_mib"]
        times = [post(url + "/v2/models/breast_cancer/infer", body) for _ in range(runs)]
        after = process_state(server.pid)
        return len(body), statistics.median(times), after["hwm_mib"] - before, after["rss_mib"] - before
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", action="append", required=True)
    ap.add_argument("--rows", type=int, action="append", help="rows per body (default 5k, 40k, 160k, 290k)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, {sys.platform}; median of {args.runs} posts per cell\n")
    print("| binary | body MB | median s | MB/s | peak RSS growth MB (x body) | RSS growth after MB |")
    print("|---|---|---|---|---|---|")
    for rows in args.rows or [5_000, 40_000, 160_000, 290_000]:
        for binary in args.binary:
            size, seconds, peak, after = measure(binary, rows, args.runs)
            mb = size / 1e6
            print(f"| {binary} | {mb:.1f} | {seconds:.3f} | {mb / seconds:.0f} | {peak:.0f} "
                  f"({peak * 2**20 / size:.1f}x) | {after:.0f} |", flush=True)


if __name__ == "__main__":
    main()
