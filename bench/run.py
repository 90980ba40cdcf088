"""make bench: throughput and latency of this server next to its peers, side by side in one run on this machine,
with existing load tools only (perf_analyzer for KServe v2, h2load for the /v1 gRPC API). Loopback only;
every load is bounded in time. Writes docs/benchmarks/results.json, the PNG plots and the tables in
docs/benchmarks.md (between its GENERATED markers).

Systems (same models, same client, same machine):
  this server, batching off (the bundled config) and on (dynamic_batching {}): v2 gRPC, v2 REST, /v1 gRPC
  NVIDIA Triton 2.51 with its C++ ONNX Runtime backend, dynamic_batching {} (TRITON_PEER: the peer's directory)
  the seed's design (bench/peers/seed_server.py): Python grpcio, ThreadPoolExecutor(10), onnxruntime; /v1 gRPC
  MLServer 1.7 (PyPI), adaptive batching on, bench/peers/mlserver_onnx.py; v2 gRPC with h2load
h2load also drives every v2 gRPC server with one pre-encoded ModelInferRequest: the one client all of them share.
Models: breast_cancer (bundled, tiny) and an MLP 512-1024x3-10 (bench/models/make_mlp.py).
Loads: closed loop at each concurrency; open loop (perf_analyzer, v2 gRPC) at a fixed rate, constant and Poisson.
One execution: this server's stack + Model::Execute + slice next to a bare ONNX Runtime run (bench/execution_bench.cc).
A/B (--baseline BIN): this build against another build of this server, side by side, closed loops only.
Usage: bench/run.py [--repeats N] [--seconds S] [--concurrency 1,8,64] [--models breast_cancer,mlp] [--execution-only]
                    [--baseline BIN]"""
import argparse
import csv
import json
import os
import pathlib
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import conftest  # noqa: E402,F401  (generates the inference.v1 stubs into build/pygen)
from inference.v1 import inference_pb2  # noqa: E402
from serving import free_port  # noqa: E402

DOCS = ROOT / "docs"
# The Triton peer's directory (its start-triton.sh; see its README). Elsewhere: a script that starts Triton's
# container the same way (REPO HTTP GRPC METRICS).
TRITON = pathlib.Path(os.environ.get("TRITON_PEER", ROOT.parent / "shared" / "peers" / "triton-ort")) / "start-triton.sh"
TICKS = os.sysconf("SC_CLK_TCK")


class Process:
    """A server under test: its CPU seconds and peak RSS come from /proc (its whole process tree)."""

    def __init__(self, name, args, ready, log):
        self.name, self.ready = name, ready
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.time() + 120
        while not ready():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{name} did not start (see {log.name})")
            time.sleep(0.2)

    def tree(self):
        pids, parents = {self.proc.pid}, {}
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
        grew = True
        while grew:
            more = {p for p, pp in parents.items() if pp in pids} - pids
            grew, pids = bool(more), pids | more
        return pids

    def cpu_seconds(self):
        total = 0
        for pid in self.tree():
            try:
                fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError):
                pass
        return total / TICKS

    def peak_rss_mib(self):
        peak = 0
        for pid in self.tree():
            try:
                for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak += int(line.split()[1])
            except OSError:
                pass
        return peak / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def http_ready(port):
    def ready():
        try:
            return requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False
    return ready


def grpc_ready(port):
    def ready():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    return ready


# --- model repositories -------------------------------------------------------------------------------------

THREADS = ('parameters { key: "intra_op_thread_count" value: { string_value: "1" } }\n'
           'parameters { key: "inter_op_thread_count" value: { string_value: "1" } }\n')


def repository(path, batching):
    """breast_cancer and mlp, two instances of one intra-op thread each on both servers (2 cores)."""
    shutil.rmtree(path, ignore_errors=True)  # the previous repeat's
    bc = path / "breast_cancer"
    shutil.copytree(ROOT / "models" / "repository" / "breast_cancer", bc)
    config = (bc / "config.pbtxt").read_text()
    (bc / "config.pbtxt").write_text(config + THREADS + ("dynamic_batching { }\n" if batching else ""))
    mlp = path / "mlp"
    (mlp / "1").mkdir(parents=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "models" / "make_mlp.py"), str(mlp / "1" / "model.onnx")],
                   check=True)
    (mlp / "config.pbtxt").write_text(
        'name: "mlp"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64\n'
        'input [ { name: "X" data_type: TYPE_FP32 dims: [ 512 ] } ]\n'
        'output [ { name: "probabilities" data_type: TYPE_FP32 dims: [ 10 ] } ]\n'
        'instance_group [ { count: 2 kind: KIND_CPU } ]\n' + THREADS + ("dynamic_batching { }\n" if batching else ""))
    return path


WIDTH = {"breast_cancer": 30, "mlp": 512}


# --- load tools ---------------------------------------------------------------------------------------------

def server_stats(http_port, model):
    try:
        s = requests.get(f"http://127.0.0.1:{http_port}/v2/models/{model}/stats", timeout=5).json()["model_stats"][0]
        st = s["inference_stats"]
        return {k: (int(st[k]["count"]), int(st[k]["ns"])) for k in ("success", "queue", "compute_infer")}
    except (requests.RequestException, KeyError, IndexError):
        return None


def perf_analyzer(model, url, protocol, concurrency, seconds, work, rate=None, distribution="constant", extra=()):
    """Closed loop at `concurrency`, or open loop at `rate` requests/s (constant or Poisson arrivals). `extra`:
    more perf_analyzer arguments (TLS options, headers)."""
    out = work / f"pa-{model}-{protocol}-{concurrency}-{rate}-{distribution}.csv"
    load = (["--request-rate-range", str(rate), "--request-distribution", distribution, "--max-threads", "16"]
            if rate else ["--concurrency-range", str(concurrency)])
    cmd = [shutil.which("perf_analyzer") or str(ROOT / ".deps" / "bin" / "perf_analyzer"), "-m", model, "-u", url,
           "-i", protocol, *load, "--measurement-interval", str(int(seconds * 1000)),
           "--stability-percentage", "999", "--max-trials", "3", "--input-data", "zero", "-f", str(out), "--verbose-csv",
           *extra]
    if not rate and concurrency > 4:
        cmd += ["--max-threads", str(concurrency)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 6 * seconds)
    if run.returncode != 0:
        raise RuntimeError(f"perf_analyzer failed: {' '.join(cmd)}\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    (row,) = list(csv.DictReader(out.open()))
    return {"throughput": float(row["Inferences/Second"]), "p50_us": float(row["p50 latency"]),
            "p99_us": float(row["p99 latency"]), "command": shlex.join(cmd[1:])}


def v1_body(model, work):
    row = np.random.default_rng(0).random(WIDTH[model]).tolist()
    message = inference_pb2.InferRequest(model=model, rows=[inference_pb2.Row(values=row)]).SerializeToString()
    body = work / f"v1-{model}.bin"
    body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)  # gRPC framing: uncompressed, length
    return body


def v2_body(model, work):
    from tritonclient.grpc import service_pb2 as pb

    x = np.random.default_rng(0).random((1, WIDTH[model]), dtype=np.float32)
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    message = req.SerializeToString()
    body = work / f"v2-{model}.bin"
    body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
    return body


H2_PATHS = {"/v1 gRPC": ("/inference.v1.InferenceService/Infer", v1_body),
            "v2 gRPC (h2load)": ("/inference.GRPCInferenceService/ModelInfer", v2_body)}


def check_grpc(port, path, body):
    """One call with grpcio first: h2load counts HTTP/2 answers and cannot see a gRPC error status."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.unary_unary(path)(body.read_bytes()[5:], timeout=30)


def h2load(model, port, concurrency, seconds, work, protocol="/v1 gRPC"):
    path, make_body = H2_PATHS[protocol]
    body = make_body(model, work)
    check_grpc(port, path, body)
    log = work / f"h2-{model}-{port}-{concurrency}-{path.rsplit('/', 1)[1]}.tsv"
    log.unlink(missing_ok=True)  # h2load appends
    seconds = max(1, round(3 * seconds))  # as long as perf_analyzer's three windows
    cmd = ["h2load", "-D", str(seconds), "-c", str(concurrency), "-m", "1", "-H", "content-type: application/grpc",
           "-H", "te: trailers", "-d", str(body), "--log-file", str(log), f"http://127.0.0.1:{port}{path}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 2 * seconds)
    if run.returncode != 0 or "succeeded" not in run.stdout:
        raise RuntimeError(f"h2load failed: {' '.join(cmd)}\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    durations = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line.strip())
    done = len(durations)
    return {"throughput": done / seconds, "p50_us": durations[done // 2], "p99_us": durations[int(done * 0.99)],
            "requests": done, "command": shlex.join(cmd[1:])}


# --- one measurement ----------------------------------------------------------------------------------------

def measure(server, load, http_port, model):
    before_cpu, before = server.cpu_seconds(), server_stats(http_port, model) if http_port else None
    try:
        result = load()
    except (RuntimeError, subprocess.TimeoutExpired) as e:  # a peer that stalls fails its cell, not the run
        print(f"bench: {server.name}: {str(e).splitlines()[0][:300]}", flush=True)
        return {"throughput": None, "p50_us": None, "p99_us": None, "error": str(e).splitlines()[0][:300]}
    after_cpu, after = server.cpu_seconds(), server_stats(http_port, model) if http_port else None
    requests_done = result.get("requests")
    if before and after:
        requests_done = after["success"][0] - before["success"][0]
        n = max(1, requests_done)
        result["server_us"] = (after["success"][1] - before["success"][1]) / n / 1000
        result["compute_us"] = (after["compute_infer"][1] - before["compute_infer"][1]) / n / 1000
        result["overhead_us"] = result["server_us"] - result["compute_us"]
    result["cpu_s_per_1000"] = (after_cpu - before_cpu) / max(1, requests_done) * 1000
    return result


RATES = {"breast_cancer": 2000, "mlp": 1000}  # requests/s offered in the open-loop runs: below every v2 server's peak


def open_loop(system, model, url, seconds, work, results, server, http):
    for distribution in ("constant", "poisson"):
        results.append({"system": system, "protocol": f"v2 gRPC, {RATES[model]}/s {distribution}", "model": model,
                        "rate": RATES[model], "distribution": distribution,
                        **measure(server, lambda: perf_analyzer(model, url, "grpc", None, seconds, work,
                                                                RATES[model], distribution), http, model)})


def measure_v2_server(system, server, http, grpc_port, models, concurrency, seconds, work, results, v1=False,
                      open_loops=True):
    """Every closed-loop load (perf_analyzer over gRPC and REST, h2load over v2 gRPC and, for this server, /v1
    gRPC) at each concurrency, then the open-loop runs, then the peak RSS."""
    try:
        for model in models:
            for c in concurrency:
                loads = [("v2 gRPC", lambda: perf_analyzer(model, f"127.0.0.1:{grpc_port}", "grpc", c, seconds, work)),
                         ("v2 REST", lambda: perf_analyzer(model, f"127.0.0.1:{http}", "http", c, seconds, work)),
                         ("v2 gRPC (h2load)", lambda: h2load(model, grpc_port, c, seconds, work, "v2 gRPC (h2load)"))]
                if v1:
                    loads.append(("/v1 gRPC", lambda: h2load(model, grpc_port, c, seconds, work)))
                for protocol, load in loads:
                    results.append({"system": system, "protocol": protocol, "model": model, "concurrency": c,
                                    **measure(server, load, http, model)})
            if open_loops:
                open_loop(system, model, f"127.0.0.1:{grpc_port}", seconds, work, results, server, http)
        results.append({"system": system, "model": "*", "peak_rss_mib": server.peak_rss_mib()})
    finally:
        server.stop()


def run_ours(name, batching, models, concurrency, seconds, work, results, binary=ROOT / "build" / "inference-server",
             open_loops=True):
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    repo = repository(work / f"repo-{name}", batching)
    log = open(work / f"{name}.log", "wb")
    server = Process(name, [str(binary), "--model-repository", str(repo),
                            "--host", "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc_port),
                            "--metrics-port", str(metrics), "--access-log-sample-rate", "0"], http_ready(http), log)
    measure_v2_server(name, server, http, grpc_port, models, concurrency, seconds, work, results, v1=True,
                      open_loops=open_loops)


def run_ab(baseline, models, concurrency, seconds, repeats, work, out):
    """Two builds of this server side by side (a change's before and after), batching off and on, alternating
    which goes first in each repeat; closed loops only. Writes OUT/ab.json and prints the medians."""
    runs = []
    builds = [("baseline", pathlib.Path(baseline)), ("this build", ROOT / "build" / "inference-server")]
    for repeat in range(repeats):
        print(f"bench: A/B repeat {repeat + 1}/{repeats}", flush=True)
        for label, binary in builds if repeat % 2 == 0 else builds[::-1]:
            for batching in (False, True):
                run_ours(f"{label}, batching {'on' if batching else 'off'}", batching, models, concurrency, seconds,
                         work, runs, binary, open_loops=False)
    medians = median_of(runs)
    (out / "ab.json").write_text(json.dumps({"baseline": str(baseline), "commit": commit(), "date": time.strftime(
        "%Y-%m-%d"), "args": {"models": models, "concurrency": concurrency, "seconds": seconds, "repeats": repeats},
        "runs": runs, "median": medians}, indent=1))
    print("| build, batching — protocol | model | c | req/s | p50 / p99 µs | overhead / compute µs |")
    print("|---|---|---|---|---|---|")
    for r in sorted((m for m in medians if m.get("protocol")), key=lambda m: (m["model"], m["concurrency"],
                                                                               m["protocol"], m["system"])):
        def num(key, fmt="{:.0f}"):
            return fmt.format(r[key]) if isinstance(r.get(key), (int, float)) else "—"
        print(f"| {r['system']} — {r['protocol']} | {r['model']} | {r['concurrency']} | {num('throughput')} | "
              f"{num('p50_us')} / {num('p99_us')} | {num('overhead_us', '{:.1f}')} / {num('compute_us', '{:.1f}')} |")


def run_triton(models, concurrency, seconds, work, results):
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    repo = repository(work / "repo-triton", batching=True)
    log = open(work / "triton.log", "wb")
    server = Process("triton", ["bash", str(TRITON), str(repo), str(http), str(grpc_port), str(metrics)],
                     http_ready(http), log)
    measure_v2_server("Triton 2.51 + ORT backend, batching", server, http, grpc_port, models, concurrency, seconds,
                      work, results)


def run_seed(models, concurrency, seconds, work, results):
    port = free_port()
    repo = repository(work / "repo-seed", batching=False)
    args = [sys.executable, str(ROOT / "bench" / "peers" / "seed_server.py"), str(port)]
    args += [f"{m}={repo / m / '1' / 'model.onnx'}" for m in models]
    server = Process("seed", args, grpc_ready(port), open(work / "seed.log", "wb"))
    try:
        for model in models:
            for c in concurrency:
                results.append({"system": "seed design (Python grpcio)", "protocol": "/v1 gRPC", "model": model,
                                "concurrency": c,
                                **measure(server, lambda: h2load(model, port, c, seconds, work), None, model)})
        results.append({"system": "seed design (Python grpcio)", "model": "*", "peak_rss_mib": server.peak_rss_mib()})
    finally:
        server.stop()


MLSERVER = ROOT / ".deps" / "mlserver-venv" / "bin" / "mlserver"


def run_mlserver(models, concurrency, seconds, work, results):
    """MLServer (PyPI) with adaptive batching on, serving the same ONNX files through bench/peers/mlserver_onnx.py.
    perf_analyzer cannot drive it (no model configuration extension), so only the shared h2load v2 gRPC load."""
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    repo = repository(work / "repo-mlserver", batching=False)
    root = work / "mlserver"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    shutil.copy(ROOT / "bench" / "peers" / "mlserver_onnx.py", root)
    (root / "settings.json").write_text(json.dumps({"host": "127.0.0.1", "http_port": http, "grpc_port": grpc_port,
                                                    "metrics_port": metrics}))
    for m in models:
        (root / m).mkdir()
        (root / m / "model-settings.json").write_text(json.dumps({
            "name": m, "implementation": "mlserver_onnx.OnnxModel", "max_batch_size": 64, "max_batch_time": 0.0005,
            "parameters": {"uri": str(repo / m / "1" / "model.onnx")}}))
    server = Process("mlserver", [str(MLSERVER), "start", str(root)], http_ready(http), open(work / "mlserver.log", "wb"))
    try:
        for model in models:
            for c in concurrency:
                results.append({"system": "MLServer 1.7, adaptive batching", "protocol": "v2 gRPC (h2load)",
                                "model": model, "concurrency": c,
                                **measure(server, lambda: h2load(model, grpc_port, c, seconds, work,
                                                                 "v2 gRPC (h2load)"), None, model)})
        results.append({"system": "MLServer 1.7, adaptive batching", "model": "*",
                        "peak_rss_mib": server.peak_rss_mib()})
    finally:
        server.stop()


EXECUTION_BENCH = ROOT / "build" / "execution_bench"


def run_execution(work):
    """One execution of this server (stack 1 or 64 one-row requests, Model::Execute, slice the rows back out) next
    to a bare ONNX Runtime Session::Run on the same stacked input (bench/execution_bench.cc, Google Benchmark):
    the median of 9 repetitions run in random order (so that drift on a shared machine does not favour one), wall time per execution."""
    if not EXECUTION_BENCH.exists():
        print(f"bench: {EXECUTION_BENCH} not built (needs libbenchmark-dev): executions left out", flush=True)
        return None
    mlp = work / "execution" / "mlp" / "1" / "model.onnx"
    mlp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "models" / "make_mlp.py"), str(mlp)], check=True)
    command = [str(EXECUTION_BENCH), str(ROOT / "models" / "repository" / "breast_cancer" / "1" / "model.onnx"), str(mlp),
               "--benchmark_repetitions=9", "--benchmark_enable_random_interleaving=true",
               "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.5",
               "--benchmark_format=json"]
    print("bench: one execution next to bare ONNX Runtime", flush=True)
    out = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    rows = []
    for b in out["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        model, kind, batch = b["run_name"].split("/")[:3]
        rows.append({"model": model, "kind": kind, "batch": int(batch),
                     "us": b["real_time"] * scale[b["time_unit"]], "cpu_us": b["cpu_time"] * scale[b["time_unit"]]})
    command[2] = "mlp/1/model.onnx"  # a temporary path: bench/models/make_mlp.py writes it
    return {"rows": rows, "command": " ".join(shlex.quote(c) for c in command).replace(str(ROOT) + "/", "")}


def median_of(runs):
    """One row per (system, protocol, model, concurrency): the median of each number over the repeats."""
    groups = {}
    for r in runs:
        groups.setdefault((r["system"], r.get("protocol"), r["model"], r.get("concurrency")), []).append(r)
    out = []
    for key, rows in groups.items():
        merged = dict(rows[0])
        for field in rows[0]:
            values = [r[field] for r in rows if isinstance(r.get(field), (int, float)) and field != "concurrency"]
            if values and field != "concurrency":
                merged[field] = statistics.median(values)  # over the repeats that did not fail
        merged["repeats"] = len(rows)
        merged["failed"] = sum(1 for r in rows if r.get("error"))
        if merged["failed"] < len(rows):
            merged.pop("error", None)
        out.append(merged)
    return out


def commit():
    return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="per measurement window (perf_analyzer: 3 windows)")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--models", default="breast_cancer,mlp")
    ap.add_argument("--out", default=str(DOCS / "benchmarks"))
    ap.add_argument("--execution-only", action="store_true",
                    help="measure only one execution next to bare ONNX Runtime; keep the other results of --out")
    ap.add_argument("--baseline", help="A/B: this build against BASELINE (another build's inference-server binary), "
                                       "side by side, no peers; writes OUT/ab.json")
    args = ap.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    models = args.models.split(",")
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-"))
    runs = []
    started = time.time()
    out = pathlib.Path(args.out)
    if args.baseline:
        return run_ab(args.baseline, models, concurrency, args.seconds, args.repeats, work, out)
    if args.execution_only:
        data = json.loads((out / "results.json").read_text())
        data["execution"] = run_execution(work)
        data["machine"]["execution_commit"] = commit()
        (out / "results.json").write_text(json.dumps(data, indent=1))
        subprocess.run([sys.executable, str(ROOT / "bench" / "report.py"), str(out / "results.json")], check=True)
        return
    for repeat in range(args.repeats):
        print(f"bench: repeat {repeat + 1}/{args.repeats}", flush=True)
        run_ours("this server, batching off", False, models, concurrency, args.seconds, work, runs)
        run_ours("this server, batching on", True, models, concurrency, args.seconds, work, runs)
        if TRITON.exists():
            run_triton(models, concurrency, args.seconds, work, runs)
        else:
            print(f"bench: Triton peer not found at {TRITON} (set TRITON_PEER): left out", flush=True)
        (work / "partial.json").write_text(json.dumps(runs))
        run_seed(models, concurrency, args.seconds, work, runs)
        if MLSERVER.exists():
            run_mlserver(models, concurrency, args.seconds, work, runs)
        else:
            print(f"bench: MLServer not installed at {MLSERVER} (scripts/install-deps.sh bench): left out", flush=True)
    execution = run_execution(work)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                           platform.processor()),
               "cores": os.cpu_count(), "kernel": platform.release(), "date": time.strftime("%Y-%m-%d"),
               "minutes": round((time.time() - started) / 60, 1), "args": vars(args),
               "commit": commit()}
    (out / "results.json").write_text(json.dumps({"machine": machine, "runs": runs, "median": median_of(runs),
                                                  "execution": execution}, indent=1))
    print(f"bench: {len(runs)} measurements in {machine['minutes']} min -> {out / 'results.json'}")
    subprocess.run([sys.executable, str(ROOT / "bench" / "report.py"), str(out / "results.json")], check=True)


if __name__ == "__main__":
    main()
