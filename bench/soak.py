"""Soak: the real server under steady mixed traffic for a bounded time (docs/reliability.md#soak).

`make soak` (SOAK_SECONDS, default 600; CI runs 60). The server serves a copy of the bundled repository with
explicit model control. First the peak is measured (closed loop, every client process as fast as it goes, 5 s);
then the clients send at SOAK_FRACTION (0.7) of it, mixed: v2 REST JSON, /v1 REST rows, v2 gRPC, batches of 1,
4 and 16 rows, over three models. At 40 % of the run a new version of diabetes is loaded (a hot reload: the old
one retires), at 60 % digits is unloaded and loaded again (its requests in between are expected to fail, and
are counted apart). Every second the server's RSS and open descriptors are sampled; every 5 s window gives its
request count, errors, p50 and p99. Exits 1 on any unexpected error, an RSS drift over --max-rss-drift-mib or
descriptors that grow by more than --max-fd-growth. Loopback only; bounded in time; stops by itself.

  .venv/bin/python bench/soak.py --seconds 600 --out docs/benchmarks/soak.json --plot docs/benchmarks/soak.png
"""
import argparse
import json
import multiprocessing as mp
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import requests

from serving import BINARY, ROOT, Server, process_state

MODELS = ROOT / "models" / "repository"
# (model, protocol, rows): the traffic mix, cycled by every client.
MIX = [("breast_cancer", "rest-v2", 1), ("diabetes", "rest-v2", 16), ("breast_cancer", "rest-v1", 4),
       ("digits", "grpc-v2", 4), ("diabetes", "grpc-v2", 1), ("digits", "rest-v2", 16)]
FEATURES = {"breast_cancer": 30, "diabetes": 10, "digits": 64}


def client(http, grpc_target, rate, stop_at, out):
    """One client process: the mix in turn, paced at `rate` requests/s (0: as fast as it goes), until `stop_at`.
    Puts a list of (end time, latency s, model, outcome) on `out`."""
    import grpc
    from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

    rng = np.random.default_rng(os.getpid())
    session = requests.Session()
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(grpc_target))
    records, i, next_at = [], 0, time.time()
    while time.time() < stop_at:
        model, protocol, n = MIX[i % len(MIX)]
        i += 1
        x = rng.random((n, FEATURES[model]), dtype=np.float32)
        start = time.time()
        try:
            if protocol == "rest-v2":
                r = session.post(f"{http}/v2/models/{model}/infer", timeout=10, json={"inputs": [
                    {"name": "X", "shape": [n, FEATURES[model]], "datatype": "FP32", "data": x.ravel().tolist()}]})
                outcome = "ok" if r.status_code == 200 else f"http {r.status_code}"
            elif protocol == "rest-v1":
                r = session.post(f"{http}/v1/infer", timeout=10,
                                 json={"model": model, "rows": [{"values": row.tolist()} for row in x]})
                outcome = "ok" if r.status_code == 200 else f"http {r.status_code}"
            else:
                req = pb.ModelInferRequest(model_name=model)
                req.inputs.add(name="X", datatype="FP32", shape=[n, FEATURES[model]])
                req.raw_input_contents.append(x.tobytes())
                stub.ModelInfer(req, timeout=10)
                outcome = "ok"
        except grpc.RpcError as e:
            outcome = f"grpc {e.code().name}"
        except requests.RequestException as e:
            outcome = f"client {type(e).__name__}"
        end = time.time()
        records.append((end, end - start, model, outcome))
        if rate:
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.time()))
    out.put(records)


def run_clients(http, grpc_target, processes, rate_each, seconds):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    stop_at = time.time() + seconds
    procs = [ctx.Process(target=client, args=(http, grpc_target, rate_each, stop_at, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    records = [r for _ in procs for r in out.get()]
    for p in procs:
        p.join()
    return records


def sample(pid, stop, samples, t0):
    while not stop.is_set():
        try:
            state = process_state(pid)
            samples.append({"t": round(time.time() - t0, 1), "rss_mib": state["rss_mib"], "fds": state["fds"]})
        except OSError:
            pass
        stop.wait(1)


def control(http, repo, seconds, t0, events):
    """The hot reload at 40 % and the unload/load at 60 %, as the model-control API does them."""
    time.sleep(max(0.0, t0 + 0.4 * seconds - time.time()))
    shutil.copytree(repo / "diabetes" / "1", repo / "diabetes" / "2")
    start = time.time()
    r = requests.post(f"{http}/v2/repository/models/diabetes/load", json={}, timeout=60)
    events.append({"what": "reload diabetes (version 2)", "t": round(start - t0, 1),
                   "seconds": round(time.time() - start, 3), "status": r.status_code})
    time.sleep(max(0.0, t0 + 0.6 * seconds - time.time()))
    start = time.time()
    r1 = requests.post(f"{http}/v2/repository/models/digits/unload", json={}, timeout=60)
    time.sleep(2)
    r2 = requests.post(f"{http}/v2/repository/models/digits/load", json={}, timeout=60)
    events.append({"what": "unload and load digits", "t": round(start - t0, 1), "until": round(time.time() - t0, 1),
                   "status": [r1.status_code, r2.status_code]})


def windows(records, t0, width=5.0):
    out = []
    if not records:
        return out
    end = max(r[0] for r in records)
    t = t0
    while t + width <= end:  # whole windows only
        inside = [r for r in records if t <= r[0] < t + width]
        lat = sorted(r[1] for r in inside if r[3] == "ok")
        out.append({"t": round(t - t0, 1), "requests": len(inside), "rps": round(len(inside) / width, 1),
                    "errors": sum(r[3] != "ok" for r in inside),
                    "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
                    "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None})
        t += width
    return out


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    w = [x for x in result["windows"] if x["p99_ms"] is not None]
    a.plot([x["t"] for x in w], [x["p99_ms"] for x in w], label="p99")
    a.plot([x["t"] for x in w], [x["p50_ms"] for x in w], label="p50")
    a.set_ylabel("latency per 5 s window (ms)")
    b.plot([s["t"] for s in result["samples"]], [s["rss_mib"] for s in result["samples"]], color="tab:red")
    b.set_ylabel("server RSS (MiB)")
    b.set_xlabel("seconds")
    for e in result["events"]:
        for ax in (a, b):
            ax.axvline(e["t"], color="grey", linestyle=":")
        a.annotate(e["what"], (e["t"], a.get_ylim()[1]), fontsize=7, rotation=90, va="top")
    a.legend()
    a.set_title(f"soak: {result['seconds']} s at {result['target_rps']:.0f} req/s "
                f"({result['requests']} requests, {result['unexpected_errors']} unexpected errors)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--fraction", type=float, default=float(os.environ.get("SOAK_FRACTION", 0.7)))
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--out")
    ap.add_argument("--plot")
    ap.add_argument("--max-rss-drift-mib", type=float, default=32)
    ap.add_argument("--max-fd-growth", type=int, default=16)
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="soak-"))
    repo = tmp / "models"
    shutil.copytree(MODELS, repo)
    log = open(tmp / "server.log", "wb")
    try:
        server = Server(repo, "--model-control-mode", "explicit", "--load-model", "*", "--access-log-sample-rate", "0",
                        log=log, binary=args.binary)
    except RuntimeError as e:
        sys.exit(f"soak: {e}:\n" + (tmp / "server.log").read_text()[-3000:])
    http, grpc_target = server.http, server.grpc_target
    try:
        peak_records = run_clients(http, grpc_target, args.clients, 0, 5)
        peak = sum(r[3] == "ok" for r in peak_records) / 5
        target = args.fraction * peak
        print(f"soak: peak {peak:.0f} req/s with {args.clients} client processes; soaking at {target:.0f} req/s "
              f"for {args.seconds:.0f} s", flush=True)

        samples, events, stop = [], [], threading.Event()
        t0 = time.time()
        sampler = threading.Thread(target=sample, args=(server.pid, stop, samples, t0), daemon=True)
        controller = threading.Thread(target=control, args=(http, repo, args.seconds, t0, events), daemon=True)
        sampler.start()
        controller.start()
        records = run_clients(http, grpc_target, args.clients, target / args.clients, args.seconds)
        controller.join(timeout=120)
        stop.set()
        sampler.join()
        alive = server.proc.poll() is None
    finally:
        code = server.stop()
        log.close()

    unload = next((e for e in events if e["what"].startswith("unload")), None)

    def expected(r):  # digits' requests while it was unloaded
        return unload and r[2] == "digits" and unload["t"] <= r[0] - t0 <= unload["until"] + 0.5

    errors = [r for r in records if r[3] != "ok"]
    unexpected = [r for r in errors if not expected(r)]
    warm = [s for s in samples if s["t"] >= 0.1 * args.seconds]
    early = [s["rss_mib"] for s in warm if s["t"] < 0.3 * args.seconds]
    late = [s["rss_mib"] for s in warm if s["t"] >= 0.8 * args.seconds]
    drift = (statistics.median(late) - statistics.median(early)) if early and late else 0.0
    fd_growth = (warm[-1]["fds"] - warm[0]["fds"]) if warm else 0
    ok_lat = sorted(r[1] for r in records if r[3] == "ok")
    result = {
        "machine": f"{os.cpu_count()} CPUs, {sys.platform}", "binary": args.binary, "seconds": args.seconds,
        "clients": args.clients, "peak_rps": round(peak, 1), "target_rps": round(target, 1),
        "achieved_rps": round(len(records) / args.seconds, 1), "requests": len(records),
        "expected_errors": len(errors) - len(unexpected), "unexpected_errors": len(unexpected),
        "unexpected_examples": sorted({r[3] for r in unexpected})[:5],
        "p50_ms": round(1000 * ok_lat[len(ok_lat) // 2], 2), "p99_ms": round(1000 * ok_lat[int(0.99 * len(ok_lat))], 2),
        "rss_mib_first": warm[0]["rss_mib"] if warm else None, "rss_mib_last": warm[-1]["rss_mib"] if warm else None,
        "rss_drift_mib": round(drift, 1), "fds_first": warm[0]["fds"] if warm else None,
        "fds_last": warm[-1]["fds"] if warm else None, "server_alive_at_end": alive, "server_exit_code": code,
        "events": events, "windows": windows(records, t0), "samples": samples,
    }
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {k: result[k] for k in ("peak_rps", "target_rps", "achieved_rps", "requests", "expected_errors",
                                      "unexpected_errors", "unexpected_examples", "p50_ms", "p99_ms", "rss_mib_first",
                                      "rss_mib_last", "rss_drift_mib", "fds_first", "fds_last", "server_exit_code")}
    print("soak:", json.dumps(summary), flush=True)
    print("soak: events:", json.dumps(events), flush=True)
    failures = []
    if unexpected:
        failures.append(f"{len(unexpected)} unexpected errors ({', '.join(result['unexpected_examples'])})")
    if abs(drift) > args.max_rss_drift_mib:
        failures.append(f"RSS drifted {drift:.1f} MiB (bound {args.max_rss_drift_mib})")
    if fd_growth > args.max_fd_growth:
        failures.append(f"open descriptors grew by {fd_growth} (bound {args.max_fd_growth})")
    if not alive or code != 0:
        failures.append(f"the server died or exited {code}")
    if any(e["status"] not in (200, [200, 200]) for e in events) or len(events) != 2:
        failures.append(f"model control failed: {events}")
    if failures:
        sys.exit("soak: FAILED: " + "; ".join(failures))
    print("soak: passed")


if __name__ == "__main__":
    main()
