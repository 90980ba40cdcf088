"""make trace-timeline: one real trace, drawn (docs/metrics.md#tracing; docs/benchmarks/trace-timeline.png).

Starts the real pieces on loopback as the tests do (tests/e2e: the OpenTelemetry Collector built from its Go
modules, the inference server over TLS with dynamic batching on breast_cancer, Envoy with the deployed envoy.yaml
and its OpenTelemetry tracer), sends eight concurrent v2 REST requests through Envoy (the first with a client
traceparent), and draws the client's trace from the collector's file: Envoy's span, the server's span, its
queue span and the execution span of the batch it ran in (which is in the trace of the batch's first request
when that was another one, and links this request's span).
Writes docs/benchmarks/trace-timeline.png and docs/benchmarks/trace-timeline.json (the trace's spans as exported).
Usage: bench/trace_timeline.py"""
import json
import os
import pathlib
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import requests  # noqa: E402

from certs import make_pki  # noqa: E402
from conftest import MODELS, Server  # noqa: E402
from otel_collector import Collector, attributes  # noqa: E402
from proxies import Envoy  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="trace-timeline-"))
    repo = work / "repo"
    import shutil

    shutil.copytree(MODELS / "breast_cancer", repo / "breast_cancer")
    config = repo / "breast_cancer" / "config.pbtxt"
    config.write_text(config.read_text().replace("count: 2", "count: 1") +
                      "dynamic_batching { max_queue_delay_microseconds: 2000 }\n")
    pki = make_pki(work / "pki")
    os.environ["REQUESTS_CA_BUNDLE"] = str(pki["ca"])
    collector = Collector(work)
    server = Server(repo, ["--trace-url", collector.traces_url, "--trace-delay-ms", "50"], tmp_path=work,
                    tls=pki).wait_ready()
    envoy = Envoy(work, [server], collector_port=collector.grpc_port)
    try:
        envoy.wait_all_healthy(2)
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 30], "data": [0.5] * 30}]}
        url = f"{envoy.url}/v2/models/breast_cancer/infer"
        requests.post(url, json=body, timeout=10)  # warm
        barrier = threading.Barrier(8)

        def one(i):
            barrier.wait()
            headers = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"} if i == 0 else {}
            assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 200

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.time() + 20
        while time.time() < deadline:
            spans = trace_with_its_execution(collector.spans())
            if len(spans) == 4:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"the trace did not arrive: {collector.spans()}")
    finally:
        envoy.stop()
        server.stop()
        collector.stop()
    draw(spans)


def trace_with_its_execution(everything):
    """The client's trace, and the execution span of the batch its request ran in: in the trace of the batch's
    first request, linked to this one's server span (a batch serves many traces)."""
    spans = [s for s in everything if s["traceId"] == TRACE]
    ids = {s["spanId"] for s in spans}
    linked = [s for s in everything if s["traceId"] != TRACE and any(link["spanId"] in ids for link in s.get("links", []))]
    return spans + linked


def draw(spans):
    by_id = {s["spanId"]: s for s in spans}

    def depth(s):
        if s["traceId"] != TRACE:  # the linked execution: under the span it links to
            return 1 + depth(next(by_id[link["spanId"]] for link in s["links"] if link["spanId"] in by_id))
        return 0 if s.get("parentSpanId") not in by_id else 1 + depth(by_id[s["parentSpanId"]])

    spans.sort(key=lambda s: (int(s["startTimeUnixNano"]), depth(s)))
    t0 = min(int(s["startTimeUnixNano"]) for s in spans)
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(spans) + 1.6))
    labels = []
    colours = {"envoy": "#7b61ff", "inference-server": "#1f77b4"}
    for row, s in enumerate(spans):
        start = (int(s["startTimeUnixNano"]) - t0) / 1000
        width = max((int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1000, 0.5)
        ax.barh(row, width, left=start, color=colours.get(s["service"], "#999"), height=0.6)
        label = f"{'  ' * depth(s)}{s['service']}: {s['name']}"
        a = attributes(s)
        if "inference.batch.requests" in a:
            label += f" (batch of {a['inference.batch.requests']}"
            label += ", linked from another trace)" if s["traceId"] != TRACE else ")"
        ax.text(start + width + 15, row, f"{width:.0f} µs", va="center", fontsize=8)
        labels.append(label.replace("  ", "    "))
        for name, at in [(e["name"], int(e["timeUnixNano"])) for e in s.get("events", [])]:
            x = (at - t0) / 1000
            ax.plot([x, x], [row - 0.3, row + 0.3], color="black", linewidth=1)
    ax.set_yticks(range(len(spans)))
    ax.set_yticklabels(labels, fontsize=9, ha="left")
    ax.tick_params(axis="y", pad=262, length=0)
    ax.invert_yaxis()
    ax.set_xlabel("µs since Envoy received the request")
    ax.set_title(f"One request through Envoy into the server: trace {TRACE[:8]}…", fontsize=10)
    ax.set_xlim(0, ax.get_xlim()[1] * 1.08)
    fig.subplots_adjust(left=0.34, right=0.98, bottom=0.2)
    out = ROOT / "docs" / "benchmarks" / "trace-timeline.png"
    fig.savefig(out, dpi=110)
    (ROOT / "docs" / "benchmarks" / "trace-timeline.json").write_text(json.dumps(spans, indent=1))
    print(f"wrote {out}")
    for s in spans:
        print(depth(s), s["service"], s["name"], (int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) // 1000, "µs",
              attributes(s).get("inference.batch.requests", ""))


if __name__ == "__main__":
    main()
