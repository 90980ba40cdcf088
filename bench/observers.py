"""make bench-observers: what tracing and payload logging cost a request (docs/benchmarks.md#tracing-and-payload-logging).

The same server five ways, side by side in one run on this machine: both off; tracing every request (three
spans each, OTLP/HTTP JSON) and 1 % of them; payload logging every request (mode all: two CloudEvents a request)
and 1 % of them. The collector and the sink are Debian's nginx on loopback answering 204 to every post (they
keep up, so the cost measured is the server's: building, encoding, queueing, posting). Load:
h2load, closed loop, one pre-encoded v2 gRPC ModelInferRequest of the bundled breast_cancer model (30 features),
at each concurrency; the three servers take turns, the order rotating each repeat; the median of the repeats is
reported. Writes docs/benchmarks/observers.json and prints the table docs/benchmarks.md shows.
Usage: bench/observers.py [--repeats 3] [--seconds 4] [--concurrency 1,64]"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402  (Process, readiness, h2load)
from serving import free_port, metric_sum  # noqa: E402

ROOT = run.ROOT
SINK = """
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  client_max_body_size 4m;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 204; }}
  }}
}}
"""
SYSTEMS = {"both off": [],
           "tracing, every request": ["--trace-url", "{sink}/v1/traces", "--trace-sample-rate", "1"],
           "tracing, 1 % of requests": ["--trace-url", "{sink}/v1/traces", "--trace-sample-rate", "0.01"],
           "payload logging, every request": ["--payload-log-url", "{sink}/events", "--payload-log-sample-rate", "1"],
           "payload logging, 1 % of requests": ["--payload-log-url", "{sink}/events", "--payload-log-sample-rate",
                                                "0.01"]}


def start_sink(tmp):
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(SINK.format(user="user root;" if os.geteuid() == 0 else "", tmp=tmp, port=port))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not run.grpc_ready(port)():
        assert time.time() < deadline and proc.poll() is None, "nginx did not start"
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def start(name, flags, sink_url, work):
    http, grpc, metrics = free_port(), free_port(), free_port()
    args = [str(ROOT / "build" / "inference-server"), "--model-repository", str(ROOT / "models" / "repository"),
            "--host", "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port",
            str(metrics), "--access-log-sample-rate", "0"]
    args += [f.format(sink=sink_url) for f in flags]
    server = run.Process(name, args, run.http_ready(http), open(work / f"{name}.log", "wb"))
    return server, grpc, f"http://127.0.0.1:{metrics}/metrics"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--concurrency", default="1,64")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-observers-"))
    sink, sink_url = start_sink(work)
    servers = {name: start(name, flags, sink_url, work) for name, flags in SYSTEMS.items()}
    runs = []
    try:
        for repeat in range(args.repeats):
            order = list(SYSTEMS)
            order = order[repeat % len(order):] + order[:repeat % len(order)]
            for c in concurrency:
                for name in order:
                    server, grpc, metrics = servers[name]
                    cpu = server.cpu_seconds()
                    result = run.h2load("breast_cancer", grpc, c, args.seconds / 3, work, "v2 gRPC (h2load)")
                    result["cpu_ms_per_request"] = (server.cpu_seconds() - cpu) * 1000 / max(1, result["requests"])
                    runs.append({"system": name, "concurrency": c, "repeat": repeat, **result})
                    print(f"bench: {name}, c={c}: {result['throughput']:.0f} req/s, p50 {result['p50_us']} µs, "
                          f"p99 {result['p99_us']} µs, {result['cpu_ms_per_request']:.3f} CPU ms/request", flush=True)
        dropped = {}  # what each server did not send, by reason: none is expected of a sink that keeps up
        for name, (_, _, metrics) in servers.items():
            text = requests.get(metrics, timeout=5).text
            dropped[name] = {
                **{f"payload {o}": metric_sum(text, "inference_payload_events_total", outcome=o)
                   for o in ("queue_full", "too_large", "sink_error")},
                **{f"spans {r}": metric_sum(text, "inference_trace_spans_dropped_total", reason=r)
                   for r in ("queue_full", "export_failed")},
                "payload sent": metric_sum(text, "inference_payload_events_total", outcome="sent"),
                "spans exported": metric_sum(text, "inference_trace_spans_exported_total")}
    finally:
        for server, _, _ in servers.values():
            server.stop()
        sink.terminate()
        sink.wait()
    median = []
    for name in SYSTEMS:
        for c in concurrency:
            cell = [r for r in runs if r["system"] == name and r["concurrency"] == c]
            median.append({"system": name, "concurrency": c, **{k: statistics.median(r[k] for r in cell) for k in (
                "throughput", "p50_us", "p99_us", "cpu_ms_per_request")}})
    out = ROOT / "docs" / "benchmarks" / "observers.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "commit": run.commit(), "args": vars(args),
                               "command": " ".join(["bench/observers.py", *sys.argv[1:]]), "sent_and_dropped": dropped,
                               "runs": runs, "median": median}, indent=1))
    print("| server | c | req/s | p50 / p99 µs | CPU ms per request |")
    print("|---|---|---|---|---|")
    for m in median:
        print(f"| {m['system']} | {m['concurrency']} | {m['throughput']:.0f} | {m['p50_us']:.0f} / {m['p99_us']:.0f} | "
              f"{m['cpu_ms_per_request']:.3f} |")
    print(f"sent and dropped: {dropped}")


if __name__ == "__main__":
    main()
