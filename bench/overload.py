"""Overload: this server offered many times the rate it can serve, on each protocol, then the load taken away
(docs/reliability.md#overload). Loopback only, bounded in time, stops by itself.

  .venv/bin/python bench/overload.py --out docs/benchmarks/overload.json      (make bench-overload)

The model is a compute-bound MLP (bench/models/make_mlp.py with --hidden-layers) with the bundled defaults: no
batching, one queue of 1024 requests (`max_queue_size`'s default), so what is measured is the default behaviour.
For each protocol (v2 REST JSON over HTTP/1.1, v2 gRPC), with h2load (nghttp2) as the load:

1. capacity: a closed loop of 8 connections (gRPC: 8 streams) for --capacity-seconds: requests/s served, C;
2. overload: --factor x C requests/s offered for --seconds, open loop: REST from --rest-connections
   connections (HTTP/1.1 has one request in flight per connection, so they must outnumber the queue), gRPC from 16
   connections of up to 128 streams each; the rate is h2load's --rps per connection. Meanwhile a probe client
   (Python: requests / grpcio) sends one request every 20 ms and records what it got and how long it took, and
   the server's RSS, descriptors and queue depth are sampled every 0.25 s;
3. recovery: the closed loop of step 1 again at once: requests/s in each 0.5 s window, and the time until a
   window reaches 90 % (and 50 %) of C.

Refused requests are answered RESOURCE_EXHAUSTED (gRPC) / 429 (REST) when the queue is full; the server's own
counts by status code (inference_requests_total) are read before and after. h2load counts HTTP/2 replies and
cannot see a gRPC status, so gRPC's accepted/refused split comes from the server's counters and the probe.

Exits 1 (CI runs it briefly: `make bench-overload BENCH_ARGS=--seconds 5`) when the server dies, a request fails
with anything but a refusal (or CANCELLED: h2load's requests in flight when it stops), nothing is refused (no
overload was reached), the queue grows past its bound, RSS grows by more than --max-rss-growth-mib, or the
closed loop afterwards does not reach half the capacity within --max-recovery-s (a stuck or still-draining server
would not; a finer bar is noise here: two closed-loop measurements a few seconds apart differ by 20 % and more on
this shared machine, and the figures are reported as measured).
"""
import argparse
import json
import pathlib
import shlex
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests

from serving import ROOT, Server, metric_sum

WIDTH = 512
MODEL = "mlp"
QUEUE_BOUND = 1024  # max_queue_size's default


def repository(work, hidden_layers):
    repo = work / "repo"
    (repo / MODEL / "1").mkdir(parents=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "models" / "make_mlp.py"), str(repo / MODEL / "1" / "model.onnx"),
                    "--hidden-layers", str(hidden_layers)], check=True)
    (repo / MODEL / "config.pbtxt").write_text('backend: "onnxruntime"\nmax_batch_size: 0\n')
    return repo


def bodies(work):
    from tritonclient.grpc import service_pb2 as pb

    x = np.random.default_rng(0).random((1, WIDTH), dtype=np.float32)
    rest = work / "rest.json"
    rest.write_text(json.dumps({"inputs": [{"name": "X", "shape": [1, WIDTH], "datatype": "FP32",
                                            "data": x.ravel().tolist()}]}))
    req = pb.ModelInferRequest(model_name=MODEL)
    req.inputs.add(name="X", datatype="FP32", shape=[1, WIDTH])
    req.raw_input_contents.append(x.tobytes())
    message = req.SerializeToString()
    grpc_body = work / "grpc.bin"
    grpc_body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)  # gRPC framing: uncompressed, length
    return {"rest": rest, "grpc": grpc_body}, x, req


def h2load(server, protocol, body, seconds, log, connections, streams=1, rps=None):
    """h2load against the server; returns its per-request log: (start s, HTTP status, duration s)."""
    if protocol == "rest":
        target = ["--h1", "-H", "content-type: application/json", f"{server.http}/v2/models/{MODEL}/infer"]
    else:
        target = ["-H", "content-type: application/grpc", "-H", "te: trailers",
                  f"http://{server.grpc_target}/inference.GRPCInferenceService/ModelInfer"]
    cmd = ["h2load", "-D", str(seconds), "-c", str(connections), "-m", str(streams), "-d", str(body),
           "--log-file", str(log)] + (["--rps", str(rps)] if rps else []) + target
    log.unlink(missing_ok=True)  # h2load appends
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120 + 2 * seconds)
    if run.returncode != 0:
        raise RuntimeError(f"h2load failed: {shlex.join(cmd)}\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    rows = []
    for line in log.read_text().splitlines():
        start_us, status, duration_us = line.split("\t")[:3]
        rows.append((int(start_us) / 1e6, int(status), int(duration_us) / 1e6))
    return rows, shlex.join(cmd)


def percentiles(values):
    if not values:
        return {"count": 0}
    v = sorted(values)
    return {"count": len(v), "p50_ms": round(1000 * v[len(v) // 2], 2), "p99_ms": round(1000 * v[int(len(v) * 0.99)], 2)}


def probe(server, protocol, x, req, stop, out):
    """One request every 20 ms, as an ordinary client sees the overload: (outcome, seconds)."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc as pb_grpc

    session = requests.Session()
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    body = {"inputs": [{"name": "X", "shape": [1, WIDTH], "datatype": "FP32", "data": x.ravel().tolist()}]}
    while not stop.is_set():
        start = time.perf_counter()
        try:
            if protocol == "rest":
                outcome = str(session.post(f"{server.http}/v2/models/{MODEL}/infer", json=body, timeout=30).status_code)
            else:
                stub.ModelInfer(req, timeout=30)
                outcome = "OK"
        except grpc.RpcError as e:
            outcome = e.code().name
        except requests.RequestException as e:
            outcome = type(e).__name__
        out.append((outcome, time.perf_counter() - start))
        stop.wait(0.02)


def sampler(server, stop, out, t0):
    while not stop.is_set():
        try:
            text = server.metrics_text()
            out.append(dict(server.state(), t=round(time.time() - t0, 2),
                            queue=metric_sum(text, "inference_queue_depth", model=MODEL)))
        except (OSError, requests.RequestException):
            pass
        stop.wait(0.25)


def codes(server, protocol):
    text = server.metrics_text()
    name = {"rest": "http-v2", "grpc": "grpc-v2"}[protocol]
    return {code: metric_sum(text, "inference_requests_total", model=MODEL, protocol=name, code=code)
            for code in ("OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")}


def windows(rows, width=0.5):
    if not rows:
        return []
    t0 = min(r[0] for r in rows)
    counts = {}
    for start, status, duration in rows:
        if status == 200:
            k = int((start + duration - t0) / width)
            counts[k] = counts.get(k, 0) + 1
    return [round(counts.get(k, 0) / width) for k in range(max(counts) + 1)] if counts else []


def one_protocol(server, protocol, body, x, req, args, work):
    result = {"protocol": {"rest": "v2 REST (JSON, HTTP/1.1)", "grpc": "v2 gRPC"}[protocol]}
    # 1. Capacity, closed loop.
    cpu = server.state()["cpu_s"]
    rows, cmd = h2load(server, protocol, body, args.capacity_seconds, work / f"{protocol}-capacity.tsv", 8,
                       streams=1)
    capacity = sum(1 for r in rows if r[1] == 200) / args.capacity_seconds
    result["capacity"] = {"rps": round(capacity), "command": cmd, **percentiles([r[2] for r in rows]),
                          "server_cores": round((server.state()["cpu_s"] - cpu) / args.capacity_seconds, 2)}

    # 2. Overload, open loop, with the probe and the sampler.
    target = args.factor * capacity
    connections, streams = (args.rest_connections, 1) if protocol == "rest" else (16, 128)
    rps_each = max(1, round(target / connections))
    before, cpu = codes(server, protocol), server.state()["cpu_s"]
    stop, probes, samples = threading.Event(), [], []
    t0 = time.time()
    threads = [threading.Thread(target=probe, args=(server, protocol, x, req, stop, probes)),
               threading.Thread(target=sampler, args=(server, stop, samples, t0))]
    for t in threads:
        t.start()
    try:
        rows, cmd = h2load(server, protocol, body, args.seconds, work / f"{protocol}-overload.tsv", connections,
                           streams=streams, rps=rps_each)
    finally:
        stop.set()
        for t in threads:
            t.join()
    after, cores = codes(server, protocol), (server.state()["cpu_s"] - cpu) / args.seconds
    delta = {k: int(after[k] - before[k]) for k in after if after[k] - before[k]}
    by_status = {}
    for _, status, duration in rows:
        by_status.setdefault(str(status), []).append(duration)
    by_outcome = {}
    for outcome, seconds in probes:
        by_outcome.setdefault(outcome, []).append(seconds)
    result["overload"] = {
        "factor": args.factor, "offered_target_rps": round(target), "connections": connections,
        "streams_per_connection": streams, "rps_per_connection": rps_each, "command": cmd,
        "sent_rps": round(len(rows) / args.seconds), "answered_ok_rps": round(delta.get("OK", 0) / args.seconds),
        "server_codes": delta, "server_cores": round(cores, 2),
        "h2load_by_http_status": {k: percentiles(v) for k, v in sorted(by_status.items())},
        "probe": {k: percentiles(v) for k, v in sorted(by_outcome.items())},
        "max_queue_depth": max((s["queue"] for s in samples), default=None),
        "rss_mib_before": samples[0]["rss_mib"] if samples else None,
        "rss_mib_max": max((s["rss_mib"] for s in samples), default=None),
        "fds_max": max((s["fds"] for s in samples), default=None)}

    # 3. Recovery: the closed loop again at once.
    rows, _ = h2load(server, protocol, body, args.capacity_seconds, work / f"{protocol}-recovery.tsv", 8, streams=1)
    per_window = windows(rows)
    first_full = next((i for i, w in enumerate(per_window) if w >= 0.9 * capacity), None)
    first_half = next((i for i, w in enumerate(per_window) if w >= 0.5 * capacity), None)
    result["recovery"] = {"rps_per_0.5s_window": per_window, "rps": round(sum(1 for r in rows if r[1] == 200) /
                                                                             args.capacity_seconds),
                          "seconds_to_90_percent": None if first_full is None else (first_full + 1) * 0.5,
                          "seconds_to_50_percent": None if first_half is None else (first_half + 1) * 0.5,
                          "state_after": server.state()}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10, help="overload length per protocol")
    ap.add_argument("--capacity-seconds", type=int, default=5)
    ap.add_argument("--factor", type=float, default=10)
    ap.add_argument("--hidden-layers", type=int, default=6, help="the MLP's depth: its cost per request")
    ap.add_argument("--rest-connections", type=int, default=2000)
    ap.add_argument("--protocols", default="rest,grpc")
    ap.add_argument("--max-rss-growth-mib", type=float, default=256)
    ap.add_argument("--max-recovery-s", type=float, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        repo = repository(work, args.hidden_layers)
        body, x, req = bodies(work)
        log = open(work / "server.log", "wb")
        server = Server(repo, "--access-log-sample-rate", "0", log=log)
        result = {"model": f"MLP 512-1024x{args.hidden_layers}-10, no batching, default queue (1024)",
                  "idle": server.state(), "protocols": []}
        try:
            for protocol in args.protocols.split(","):
                result["protocols"].append(one_protocol(server, protocol, body[protocol], x, req, args, work))
                print(json.dumps(result["protocols"][-1]), flush=True)
            result["server_alive"] = server.proc.poll() is None
        finally:
            result["server_exit_code"] = server.stop()
            if result.get("server_exit_code") not in (0, None) or not result.get("server_alive"):
                sys.stderr.write((work / "server.log").read_text()[-4000:])
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    failures = verdict(result, args)
    if failures:
        sys.exit("overload: FAILED: " + "; ".join(failures))
    print("overload: passed")


def verdict(result, args):
    failures = []
    if not result.get("server_alive") or result.get("server_exit_code") != 0:
        failures.append(f"the server did not survive (exit code {result.get('server_exit_code')})")
    for p in result["protocols"]:
        name, o, r = p["protocol"], p["overload"], p["recovery"]
        other = {k: v for k, v in o["server_codes"].items() if k not in ("OK", "RESOURCE_EXHAUSTED", "CANCELLED")}
        if other:
            failures.append(f"{name}: requests failed otherwise than refused: {other}")
        if not o["server_codes"].get("RESOURCE_EXHAUSTED"):
            failures.append(f"{name}: nothing was refused: the overload was not reached")
        if o["max_queue_depth"] is not None and o["max_queue_depth"] > QUEUE_BOUND:
            failures.append(f"{name}: the queue reached {o['max_queue_depth']:.0f} (bound {QUEUE_BOUND})")
        if o["rss_mib_max"] is not None and o["rss_mib_max"] - result["idle"]["rss_mib"] > args.max_rss_growth_mib:
            failures.append(f"{name}: RSS grew to {o['rss_mib_max']} MiB")
        if r["seconds_to_50_percent"] is None or r["seconds_to_50_percent"] > args.max_recovery_s:
            failures.append(f"{name}: throughput not back to half the capacity within {args.max_recovery_s} s: {r}")
    return failures


if __name__ == "__main__":
    main()
