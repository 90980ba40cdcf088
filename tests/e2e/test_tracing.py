"""Tracing (--trace-url, Triton's --trace-config; docs/metrics.md#tracing): the real server exports
OpenTelemetry spans over OTLP/HTTP to a real OpenTelemetry Collector (tests/e2e/otel_collector.py), which writes
them to a file the tests read. Each traced request has a server span (under the caller's span when a W3C
traceparent came), a queue span, and the execution span of its batch, which links every request it served;
sampling is parent-based with a ratio for the rest; a collector that is gone or stalled fails and delays no
request, and what it did not take is counted. Through the real Envoy with the deployed envoy.yaml (its
OpenTelemetry tracer pointed at the same collector), Envoy's span and the server's are one trace."""
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import MODELS, Server, metric_sum, refusal, wait_for
from otel_collector import Collector, attributes
from proxies import Envoy, write_runtime
from test_batching import batching_repository, v2_body

MODEL = "breast_cancer"  # 30 FP32 features a row
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
FAST = ("--trace-delay-ms", "50")  # export within 50 ms: the tests wait less
# Under qemu (make test-arm64) the spans of one request and a failed one are checked: the rest exercises Envoy's
# configuration, flag parsing and timing, which do not depend on the server's architecture.
NATIVE_ONLY = pytest.mark.not_under_emulation("Envoy's tracer, flags and batching: the same native; the arm64 "
                                              "server's spans are checked by the first two tests")


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path)
    yield c
    c.stop()


def rows(n=2, seed=0):
    return np.random.default_rng(seed).random((n, 30), dtype=np.float32)


def infer_rest(server, x, headers=None):
    r = requests.post(f"{server.http}/v2/models/{MODEL}/infer", json=v2_body(x), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def grpc_request(x, request_id=""):
    req = pb.ModelInferRequest(model_name=MODEL, id=request_id)
    req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    return req


def traceparent(trace=TRACE, parent=PARENT, sampled=True):
    return f"00-{trace}-{parent}-{'01' if sampled else '00'}"


def server_spans(collector):
    return [s for s in collector.spans() if s["name"].startswith("infer")]


def test_a_traced_request_has_its_server_queue_and_execution_spans_under_the_callers_span(
        make_server, collector, monkeypatch):
    monkeypatch.setenv("POD_NAME", "inference-server-7d9f-abcde")  # as the Deployment's downward API sets it
    server = make_server(MODELS, "--trace-url", collector.traces_url, *FAST,
                         "--trace-resource", "deployment.environment=test")
    infer_rest(server, rows(2), headers={"traceparent": traceparent(), "tracestate": "vendor=abc"})
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    other = "5bf92f3577b34da6a3ce929d0e0e4737"
    stub.ModelInfer(grpc_request(rows(3, seed=1), "grpc-1"),
                    metadata=[("traceparent", traceparent(other, "1111111111111111"))])
    wait_for(lambda: len(collector.spans()) == 6, timeout=10, what="3 spans of each of 2 requests")
    spans = collector.spans()
    for trace, parent, protocol, n in [(TRACE, PARENT, "http-v2", 2), (other, "1111111111111111", "grpc-v2", 3)]:
        mine = {s["name"]: s for s in spans if s["traceId"] == trace}
        assert sorted(mine) == ["execute breast_cancer", "infer breast_cancer", "queue"], spans
        request, queue, execute = mine["infer breast_cancer"], mine["queue"], mine["execute breast_cancer"]
        assert request["parentSpanId"] == parent and request["kind"] == 2  # SERVER, under the caller's span
        assert queue["parentSpanId"] == request["spanId"] and execute["parentSpanId"] == request["spanId"]
        assert execute["links"] == [{"traceId": trace, "spanId": request["spanId"]}]
        a = attributes(request)
        assert a["inference.protocol"] == protocol and a["inference.model"] == MODEL
        assert a["inference.model_version"] == 1 and a["inference.status"] == "OK"
        assert a["inference.input_bytes"] == n * 30 * 4 and a["inference.output_bytes"] > 0
        start, end = int(request["startTimeUnixNano"]), int(request["endTimeUnixNano"])
        for child in (queue, execute):  # inside the request, in order
            assert start <= int(child["startTimeUnixNano"]) <= int(child["endTimeUnixNano"]) <= end, (request, child)
        assert int(queue["endTimeUnixNano"]) <= int(execute["startTimeUnixNano"])
        assert abs(start / 1e9 - time.time()) < 60  # Unix time, not the steady clock's
        assert attributes(execute)["inference.batch.requests"] == 1 and attributes(execute)["inference.batch.rows"] == n
        assert request["resource"]["service.name"] == "inference-server"
        assert request["resource"]["k8s.pod.name"] == "inference-server-7d9f-abcde"
        assert request["resource"]["deployment.environment"] == "test"
    # The caller's tracestate stays with its trace.
    assert {s["traceId"]: s.get("traceState") for s in server_spans(collector)} == {TRACE: "vendor=abc", other: None}
    assert metric_sum(server.metrics_text(), "inference_trace_spans_exported_total") == 6
    assert any(line["msg"] == "tracing" for line in server.log_lines())


def test_a_request_without_a_context_starts_a_trace_and_a_failed_one_says_why(make_server, collector):
    server = make_server(MODELS, "--trace-url", collector.traces_url, *FAST)
    r = requests.post(f"{server.http}/v2/models/{MODEL}/infer",
                      json={"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}, timeout=10)
    assert r.status_code == 400
    infer_rest(server, rows(1))
    wait_for(lambda: len(server_spans(collector)) == 2, timeout=10, what="2 server spans")
    failed, ok = sorted(server_spans(collector), key=lambda s: "status" in s and s["status"].get("code") == 2,
                        reverse=True)
    assert failed["status"]["code"] == 2 and "shape" in failed["status"]["message"], failed
    assert attributes(failed)["inference.status"] == "INVALID_ARGUMENT"
    assert "parentSpanId" not in ok and len(ok["traceId"]) == 32 and ok["traceId"] != TRACE
    assert {s["name"] for s in collector.spans() if s["traceId"] == failed["traceId"]} == {"infer breast_cancer"}


@NATIVE_ONLY
def test_one_execution_span_per_batch_links_every_request_it_served(tmp_path, make_server, collector):
    server = make_server(batching_repository(tmp_path), "--trace-url", collector.traces_url, *FAST)
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    barrier = threading.Barrier(16)

    def one(i):
        barrier.wait()
        stub.ModelInfer(grpc_request(rows(1, seed=i), f"r{i}"), timeout=30)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: len(server_spans(collector)) == 16, timeout=10, what="16 server spans")
    spans = collector.spans()
    requests_ = {s["spanId"]: s for s in spans if s["name"].startswith("infer")}
    executions = [s for s in spans if s["name"].startswith("execute")]
    linked = [link["spanId"] for e in executions for link in e["links"]]
    assert sorted(linked) == sorted(requests_), "each request is linked by exactly one execution"
    for e in executions:
        assert attributes(e)["inference.batch.requests"] == len(e["links"])
        assert {link["traceId"] for link in e["links"]} == {requests_[link["spanId"]]["traceId"] for link in e["links"]}
        assert e["parentSpanId"] == e["links"][0]["spanId"]  # in the first request's trace
    assert max(len(e["links"]) for e in executions) > 1, [len(e["links"]) for e in executions]
    print(f"16 requests ran in {len(executions)} executions: {sorted(len(e['links']) for e in executions)}")


@pytest.mark.not_under_emulation("2,100 requests for a ratio: the sampler is the same code native")
def test_sampling_keeps_the_ratio_and_follows_a_parents_decision(make_server, collector):
    server = make_server(MODELS, "--trace-url", collector.traces_url, *FAST, "--trace-sample-rate", "0.1")
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    x = rows(1)
    for i in range(2000):
        stub.ModelInfer(grpc_request(x))
    # Parent-based: a sampled parent is always traced, an unsampled one never, whatever the ratio.
    for i in range(50):
        stub.ModelInfer(grpc_request(x), metadata=[("traceparent", traceparent(f"{i + 1:032x}", sampled=True))])
        stub.ModelInfer(grpc_request(x), metadata=[("traceparent", traceparent(f"{i + 1000:032x}", sampled=False))])
    time.sleep(0.5)
    wait_for(lambda: metric_sum(server.metrics_text(), "inference_trace_spans_exported_total") ==
             len(collector.spans()) and len(collector.spans()) > 0, timeout=10, what="exports settled")
    spans = server_spans(collector)
    parented = [s for s in spans if "parentSpanId" in s]
    rooted = [s for s in spans if "parentSpanId" not in s]
    assert sorted(int(s["traceId"], 16) for s in parented) == list(range(1, 51)), "sampled parents only"
    # 2,000 draws at 0.1: 200 expected, standard deviation 13.4; five of them either side.
    assert 133 <= len(rooted) <= 267, len(rooted)
    print(f"--trace-sample-rate 0.1 traced {len(rooted)} of 2000 requests")


@NATIVE_ONLY
def test_through_envoy_one_trace_holds_envoys_span_and_the_servers(tmp_path, pki, collector):
    server = Server(MODELS, ["--trace-url", collector.traces_url, *FAST], tmp_path=tmp_path, tls=pki).wait_ready()
    envoy = Envoy(tmp_path, [server], collector_port=collector.grpc_port)
    try:
        envoy.wait_all_healthy(2)
        x = rows(2)
        # /v1, transcoded by Envoy to gRPC; /v2 REST passed through; the second with the client's own context.
        v1 = {"model": MODEL, "rows": [{"values": r} for r in x.tolist()], "request_id": "via-envoy-v1"}
        r = requests.post(envoy.url + "/v1/infer", json=v1, timeout=30)
        assert r.status_code == 200, r.text
        r = requests.post(f"{envoy.url}/v2/models/{MODEL}/infer", json=v2_body(x), timeout=30,
                          headers={"traceparent": traceparent()})
        assert r.status_code == 200, r.text

        def ours():
            return [s for s in server_spans(collector) if s["service"] == "inference-server"]

        wait_for(lambda: len(ours()) == 2 and len({s["traceId"] for s in collector.spans()
                                                    if s["service"] == "envoy"}) == 2,
                 timeout=20, what="2 server spans and Envoy's spans of 2 traces")
        spans = collector.spans()
        by_id = {s["spanId"]: s for s in spans}
        for mine in ours():
            parent = by_id.get(mine.get("parentSpanId"))
            assert parent and parent["service"] == "envoy" and parent["traceId"] == mine["traceId"], (mine, spans)
            # Envoy's span holds the server's, in time too (one machine's clock; Envoy's times are whole µs).
            assert int(parent["startTimeUnixNano"]) <= int(mine["startTimeUnixNano"])
            assert int(mine["endTimeUnixNano"]) <= int(parent["endTimeUnixNano"]) + 1000
            names = {s["name"] for s in spans if s["traceId"] == mine["traceId"]}
            assert {"queue", "execute breast_cancer"} <= names, names
            protocol = attributes(mine)["inference.protocol"]
            if mine["traceId"] == TRACE:  # the client's trace, through Envoy's span, to ours
                assert protocol == "http-v2"
                root = parent
                while root.get("parentSpanId") in by_id:
                    root = by_id[root["parentSpanId"]]
                assert root["parentSpanId"] == PARENT, root
            else:
                assert protocol == "grpc-v1"  # Envoy's transcoder called the server's gRPC
        print("trace through Envoy:", sorted((s["service"], s["name"]) for s in spans if s["traceId"] == TRACE))
    finally:
        envoy.stop()
        server.stop()


@NATIVE_ONLY
def test_envoys_runtime_share_decides_for_envoy_and_the_server(tmp_path, pki, collector):
    """tracing.random_sampling from the envoy-runtime ConfigMap (scripts/canary.sh tracing N): at 0 % Envoy traces
    nothing and tells the server so (an unsampled traceparent), so neither side exports a span."""
    runtime = tmp_path / "envoy-runtime"
    runtime.mkdir()
    server = Server(MODELS, ["--trace-url", collector.traces_url, *FAST], tmp_path=tmp_path, tls=pki).wait_ready()
    envoy = Envoy(tmp_path, [server], runtime_dir=runtime, collector_port=collector.grpc_port)
    try:
        envoy.wait_all_healthy(2)
        write_runtime(runtime, {"metadata": {"name": "envoy-runtime"}, "data": {"tracing_percent": "0"}})
        wait_for(lambda: requests.get(envoy.admin + "/runtime", timeout=5).json()["entries"]
                 .get("tracing.random_sampling", {}).get("final_value") == "0", timeout=10, what="Envoy at 0 %")
        for _ in range(20):
            r = requests.post(f"{envoy.url}/v2/models/{MODEL}/infer", json=v2_body(rows(1)), timeout=30)
            assert r.status_code == 200, r.text
        wait_for(lambda: metric_sum(server.metrics_text(), "inference_requests_total") == 20, timeout=10,
                 what="20 requests served")
        time.sleep(1)  # three export intervals
        assert collector.spans() == [], collector.spans()
    finally:
        envoy.stop()
        server.stop()


class Stalled:
    """A collector that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/traces"


def latencies(servers, n):
    out = [[] for _ in servers]
    x = rows(1)
    for _ in range(n):
        for i, server in enumerate(servers):
            start = time.perf_counter()
            infer_rest(server, x)
            out[i].append(time.perf_counter() - start)
    return out


@pytest.mark.not_under_emulation("client p99 beside a server without tracing: emulation's timing is not the server's")
@pytest.mark.parametrize("fault", ["gone", "stalled"])
def test_a_collector_that_is_gone_or_stalled_never_fails_or_delays_a_request(make_server, fault):
    if fault == "stalled":
        stalled = Stalled()  # kept: its socket listens as long as the test runs
        url = stalled.url
    else:  # a port nobody listens on
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/traces"
        probe.close()
    server = make_server(MODELS, "--trace-url", url, *FAST, "--trace-queue", "16", "--trace-batch", "8")
    baseline = make_server(MODELS)
    latencies([baseline, server], 20)  # warm both
    off, on = latencies([baseline, server], 300)  # every request succeeds (infer_rest asserts it)
    p99_off, p99_on = np.percentile(off, 99), np.percentile(on, 99)
    print(f"collector {fault}: client p99 {1000 * p99_off:.2f} ms without tracing, {1000 * p99_on:.2f} ms with it")
    assert p99_on < 2 * p99_off + 0.02, (p99_off, p99_on)
    reason = {"gone": "export_failed", "stalled": "queue_full"}[fault]
    wait_for(lambda: metric_sum(server.metrics_text(), "inference_trace_spans_dropped_total", reason=reason) > 0,
             timeout=10, what=f"{reason} counted")
    assert any(line["msg"].startswith("trace spans dropped") for line in server.log_lines())
    assert metric_sum(server.metrics_text(), "inference_trace_spans_exported_total") == 0
    # Nor does it hold the server when it stops: an export in flight is abandoned a second after the stop
    # (its timeout is 10 s).
    start = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - start < 5, f"stopping took {time.monotonic() - start:.1f} s"


@NATIVE_ONLY
def test_tritons_trace_config_spellings_turn_tracing_on_and_off(make_server, collector):
    address = collector.traces_url.removeprefix("http://")  # Triton's url has no scheme
    server = make_server(MODELS, "--trace-config", "mode=opentelemetry", "--trace-config", "level=TIMESTAMPS",
                         "--trace-config", "rate=1", "--trace-config", "count=-1",
                         "--trace-config", f"opentelemetry,url={address}",
                         "--trace-config", "opentelemetry,resource=service.name=triton-spelled",
                         "--trace-config", "opentelemetry,bsp_schedule_delay=50",
                         "--trace-config", "opentelemetry,bsp_max_queue_size=100",
                         "--trace-config", "opentelemetry,bsp_max_export_batch_size=10")
    infer_rest(server, rows(1))
    wait_for(lambda: len(server_spans(collector)) == 1, timeout=10, what="a server span")
    assert server_spans(collector)[0]["resource"]["service.name"] == "triton-spelled"
    (line,) = [line for line in server.log_lines() if line["msg"] == "tracing"]
    assert line["queue"] == 100 and line["batch"] == 10 and line["delay_ms"] == 50, line
    off = make_server(MODELS, "--trace-url", collector.traces_url, "--trace-config", "level=OFF")
    infer_rest(off, rows(1))
    assert not any(line["msg"] == "tracing" for line in off.log_lines())


@NATIVE_ONLY
@pytest.mark.parametrize("args,words", [
    (["--trace-url", "ftp://127.0.0.1/"], "--trace-url must start with http:// or https://"),
    (["--trace-sample-rate", "1.5"], "--trace-sample-rate must be within 0..1"),
    (["--trace-queue", "0"], "--trace-queue must be within 1..1000000"),
    (["--trace-queue", "10", "--trace-batch", "11"], "--trace-batch must be within 1..--trace-queue"),
    (["--trace-delay-ms", "0"], "--trace-delay-ms must be within 1..600000"),
    (["--trace-resource", "novalue"], "--trace-resource novalue: expected key=value"),
    (["--trace-config", "mode=triton"], "only mode=opentelemetry"),
    (["--trace-config", "triton,file=/tmp/trace.json"], "Triton's own trace files are not written"),
    (["--trace-config", "level=TENSORS"], "use --payload-log-url"),
    (["--trace-config", "count=100"], "only count=-1"),
    (["--trace-config", "rate=0"], "rate must be a whole number of requests, at least 1"),
    (["--trace-config", "opentelemetry,colour=blue"], "unknown setting 'colour'"),
    (["--trace-config", "level"], "expected [opentelemetry,]key=value"),
])
def test_bad_tracing_flags_stop_the_server_with_a_reason(args, words):
    stderr = refusal(*args)
    assert words in stderr, stderr
