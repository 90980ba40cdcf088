"""Payload logging (--payload-log-url; docs/metrics.md#payload-logging): the real server sends CloudEvents in
KServe's logger format to a real HTTP sink, which parses every event with the CloudEvents SDK for Python (as a
KServe user's sink would). Every mode, sampling, the size cut, a sink that fails, is slow or is gone (requests
unaffected, drops counted and logged), ids and trace ids joining the two events, and no header of the request
(its bearer token) in any event."""
import http.server
import json
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from cloudevents.http import from_http
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import MODELS, answers, free_port, metric_sum, refusal, wait_for

MODEL = "breast_cancer"  # 30 FP32 features a row
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Sink:
    """A CloudEvents HTTP sink on loopback: every event parsed by the SDK (binary mode), kept with its headers.
    `status` is what it answers; `delay` how long it takes first."""

    def __init__(self, status=200, delay=0.0):
        self.events, self.status, self.delay = [], status, delay
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(sink.delay)
                sink.events.append((from_http(dict(self.headers), body), dict(self.headers)))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client (the inference server) that hung up on a slow sink: not the test's business

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


def rows(n=2, seed=0):
    return np.random.default_rng(seed).random((n, 30), dtype=np.float32)


def infer_rest(server, x, request_id=None, headers=None):
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}
    if request_id is not None:
        body["id"] = request_id
    r = requests.post(f"{server.http}/v2/models/{MODEL}/infer", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def events_total(server, outcome, kind=None):
    labels = {"outcome": outcome, **({"type": kind} if kind else {})}
    return metric_sum(server.metrics_text(), "inference_payload_events_total", **labels)


def by_type(sink):
    out = {"request": [], "response": []}
    for event, headers in sink.events:
        out[event["type"].rsplit(".", 1)[1]].append((event, headers))
    return out


def test_each_request_and_response_reaches_the_sink_in_kserves_format(make_server, sink):
    server = make_server(MODELS, "--payload-log-url", sink.url)
    sent = {}
    for i in range(10):
        x = rows(seed=i)
        sent[f"rest-{i}"] = (x, infer_rest(server, x, request_id=f"rest-{i}",
                                           headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}))
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    for i in range(10):
        x = rows(seed=100 + i)
        req = pb.ModelInferRequest(model_name=MODEL, id=f"grpc-{i}")
        req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())
        reply = stub.ModelInfer(req)
        sent[f"grpc-{i}"] = (x, reply)
    wait_for(lambda: len(sink.events) == 40, timeout=10, what="40 events (20 requests, 20 responses)")
    events = by_type(sink)
    for kind in ("request", "response"):
        assert sorted(e["id"] for e, _ in events[kind]) == sorted(sent), kind  # the request id joins the two
    for event, headers in events["request"]:
        assert event["specversion"] == "1.0" and event["source"] == "inference-server"
        assert event["type"] == "org.kubeflow.serving.inference.request"
        assert event["inferenceservicename"] == MODEL and event["modelversion"] == "1"
        assert event["component"] == "predictor"
        assert headers["Content-Type"] == "application/json"
        (tensor,) = event.data["inputs"]
        x, _ = sent[event["id"]]
        assert tensor["name"] == "X" and tensor["datatype"] == "FP32" and tensor["shape"] == list(x.shape)
        assert np.array(tensor["data"], np.float32).tobytes() == x.ravel().tobytes()  # as the model saw it
        # A request that carried a W3C trace context names its trace; the others their generated one.
        assert (event["traceid"] == TRACE) == event["id"].startswith("rest-"), event["traceid"]
    for event, _ in events["response"]:
        assert event["type"] == "org.kubeflow.serving.inference.response"
        answer = sent[event["id"]][1]
        outputs = {o["name"]: o for o in event.data["outputs"]}
        assert event.data["model_name"] == MODEL and event.data["model_version"] == "1"
        if event["id"].startswith("rest-"):  # what the client got, output by output
            for o in answer["outputs"]:
                assert outputs[o["name"]]["data"] == pytest.approx(o["data"]), o["name"]
        else:
            names = [o.name for o in answer.outputs]
            assert sorted(outputs) == sorted(names)
    assert events_total(server, "sent") == 40
    assert any(line["msg"] == "payload logging" for line in server.log_lines())


@pytest.mark.parametrize("mode", ["request", "response"])
def test_a_mode_sends_only_its_events(make_server, sink, mode):
    server = make_server(MODELS, "--payload-log-url", sink.url, "--payload-log-mode", mode)
    for i in range(5):
        infer_rest(server, rows(seed=i), request_id=f"m-{i}")
    wait_for(lambda: len(sink.events) == 5, timeout=10, what="5 events")
    time.sleep(0.5)
    assert {e["type"] for e, _ in sink.events} == {f"org.kubeflow.serving.inference.{mode}"}
    assert len(sink.events) == 5


def test_sampling_keeps_both_events_of_about_the_rate_of_requests(make_server, sink):
    server = make_server(MODELS, "--payload-log-url", sink.url, "--payload-log-sample-rate", "0.3")
    n = 600
    for i in range(n):
        infer_rest(server, rows(1, seed=i), request_id=f"s-{i}")
    time.sleep(1)
    wait_for(lambda: len(sink.events) % 2 == 0, timeout=10, what="whole pairs")
    events = by_type(sink)
    sampled = {e["id"] for e, _ in events["request"]}
    assert sampled == {e["id"] for e, _ in events["response"]}  # a request is sampled with its response
    # Binomial(600, 0.3): mean 180, standard deviation 11.2; 4.5 of them either way.
    assert 130 <= len(sampled) <= 230, len(sampled)


def with_parameters(tmp_path, **models):
    """The bundled repository with each named model's config.pbtxt given extra `parameters` entries."""
    repo = tmp_path / "repo"
    shutil.copytree(MODELS, repo)
    for model, parameters in models.items():
        config = repo / model / "config.pbtxt"
        config.write_text(config.read_text() + "".join(
            f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n' for k, v in parameters.items()))
    return repo


def test_a_models_own_parameters_override_the_flags(make_server, sink, tmp_path):
    """config.pbtxt's payload_log_mode / payload_log_sample_rate for one model; the flags for the others."""
    repo = with_parameters(tmp_path, diabetes={"payload_log_mode": "none"}, digits={"payload_log_mode": "response"},
                           breast_cancer={"payload_log_sample_rate": "0"})
    server = make_server(repo, "--payload-log-url", sink.url, "--payload-log-sample-rate", "1")
    for model, features in [("breast_cancer", 30), ("diabetes", 10), ("digits", 64)]:
        body = {"id": model, "inputs": [{"name": "X", "datatype": "FP32", "shape": [1, features],
                                         "data": [0.5] * features}]}
        r = requests.post(f"{server.http}/v2/models/{model}/infer", json=body, timeout=10)
        assert r.status_code == 200, r.text
    wait_for(lambda: len(sink.events) >= 1, timeout=10, what="digits' response event")
    time.sleep(0.5)
    # breast_cancer: its rate 0; diabetes: none; digits: its own mode with the flags' rate.
    assert [(e["id"], e["type"].rsplit(".", 1)[1]) for e, _ in sink.events] == [("digits", "response")]


@pytest.mark.parametrize("parameters,words", [
    ({"payload_log_mode": "everything"}, "parameters['payload_log_mode'] must be all, request, response or none"),
    ({"payload_log_sample_rate": "2"}, "parameters['payload_log_sample_rate'] must be a number within 0..1"),
])
def test_a_bad_payload_log_parameter_refuses_the_config_naming_it(make_server, sink, tmp_path, parameters, words):
    server = make_server(with_parameters(tmp_path, diabetes=parameters), "--payload-log-url", sink.url, ready=False)
    wait_for(lambda: any(words in line.get("reason", "") + line.get("error", "") for line in server.log_lines()),
             timeout=20, what="the refusal logged")
    # The ports open once the first load is over (slow under a sanitizer): the other models then serve.
    wait_for(lambda: answers(f"{server.http}/v2/models/digits/ready"), timeout=60, what="digits ready")
    assert requests.get(f"{server.http}/v2/models/diabetes/ready", timeout=5).status_code != 200


def test_without_a_sink_the_parameters_are_checked_and_said_to_be_ignored(make_server, tmp_path):
    server = make_server(with_parameters(tmp_path, diabetes={"payload_log_mode": "request"}))
    (line,) = [line for line in server.log_lines() if "payload_log_mode" in json.dumps(line)]
    assert "payload logging is off (no --payload-log-url)" in json.dumps(line), line


def test_an_event_over_the_limit_is_dropped_and_counted(make_server, sink):
    # One row's request is ~600 bytes of JSON, 50 rows' ~30,000.
    server = make_server(MODELS, "--payload-log-url", sink.url, "--payload-log-max-bytes", "4000",
                         "--payload-log-mode", "request")
    infer_rest(server, rows(50), request_id="big")
    infer_rest(server, rows(1), request_id="small")
    wait_for(lambda: len(sink.events) == 1, timeout=10, what="the small request's event")
    time.sleep(0.5)
    assert [e["id"] for e, _ in sink.events] == ["small"]
    assert events_total(server, "too_large", "request") == 1
    wait_for(lambda: any("over --payload-log-max-bytes" in line["msg"] for line in server.log_lines()),
             timeout=5, what="the drop's log line")


def latencies(servers, n):
    """Client latencies of `n` requests to each of `servers`, taken in turn (so that both see the same machine)."""
    out = [[] for _ in servers]
    for i in range(n):
        for server, times in zip(servers, out):
            start = time.perf_counter()
            infer_rest(server, rows(1, seed=i))
            times.append(time.perf_counter() - start)
    return out


@pytest.mark.parametrize("fault", ["fails", "slow", "gone"])
def test_a_sink_that_fails_is_slow_or_is_gone_never_delays_or_fails_a_request(make_server, fault):
    sink = Sink(status=500 if fault == "fails" else 200, delay=2.0 if fault == "slow" else 0.0)
    url = sink.url
    if fault == "gone":
        sink.stop()
    try:
        server = make_server(MODELS, "--payload-log-url", url, "--payload-log-queue", "4")
        baseline = make_server(MODELS)
        latencies([baseline, server], 20)  # warm both
        off, on = latencies([baseline, server], 200)  # every request succeeds (infer_rest asserts it)
        p99_off, p99_on = np.percentile(off, 99), np.percentile(on, 99)
        print(f"sink {fault}: client p99 {1000 * p99_off:.2f} ms without payload logging, "
              f"{1000 * p99_on:.2f} ms with it")
        assert p99_on < 2 * p99_off + 0.02, (p99_off, p99_on)
        outcome = {"fails": "sink_error", "slow": "queue_full", "gone": "sink_error"}[fault]
        wait_for(lambda: events_total(server, outcome) > 0, timeout=10, what=f"{outcome} counted")
        assert any(line["msg"].startswith("payload events dropped") for line in server.log_lines())
    finally:
        if fault != "gone":
            sink.stop()


def test_no_header_of_the_request_reaches_an_event_and_ids_cannot_forge_headers(make_server, sink, tmp_path):
    tokens = tmp_path / "tokens.json"
    secret = "s3cr3t-token-value-0123456789"
    import hashlib

    tokens.write_text(json.dumps({"tokens": [{"name": "client", "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                                              "scopes": ["infer", "health", "metadata"]}]}))
    server = make_server(MODELS, "--payload-log-url", sink.url, "--auth-tokens-file", str(tokens))
    forged = "id\r\nX-Forged: 1"
    infer_rest(server, rows(1), request_id=forged, headers={"Authorization": f"Bearer {secret}"})
    wait_for(lambda: len(sink.events) == 2, timeout=10, what="2 events")
    for event, headers in sink.events:
        assert secret not in json.dumps(headers) and secret not in json.dumps(event.data)
        assert "X-Forged" not in headers and "x-forged" not in {k.lower() for k in headers}
        assert headers["ce-id"] == "id%0D%0AX-Forged:%201"  # percent-encoded, as the HTTP binding says
    assert {event.data.get("id") for event, _ in sink.events} == {forged}  # the body keeps it whole


@pytest.mark.parametrize("args,words", [
    (["--payload-log-url", "ftp://127.0.0.1/"], "must start with http:// or https://"),
    (["--payload-log-mode", "everything"], "must be all, request or response"),
    (["--payload-log-sample-rate", "1.5"], "within 0..1"),
    (["--payload-log-max-bytes", "0"], "--payload-log-max-bytes must be at least 1"),
    (["--payload-log-queue", "0"], "--payload-log-queue within 1..1000000"),
])
def test_bad_payload_log_flags_stop_the_server_with_a_reason(args, words):
    stderr = refusal(*args)
    assert words in stderr, stderr


def test_a_password_in_the_sink_url_is_never_logged(make_server, sink):
    url = sink.url.replace("http://", "http://logger:pa55word-in-url@")
    server = make_server(MODELS, "--payload-log-url", url)
    infer_rest(server, rows(1), request_id="with-credentials")
    wait_for(lambda: len(sink.events) == 2, timeout=10, what="2 events (the credentials are curl's basic auth)")
    (line,) = [line for line in server.log_lines() if line["msg"] == "payload logging"]
    assert line["sink"] == sink.url, line
    assert "pa55word" not in "".join(map(str, server.log_lines()))
