"""Behaviour the README and docs promise that no other test pinned: a deadline that passes while queued,
a full queue, /v1 on a model that is not tabular, --default-model, the text log format and the access-log
sample rate."""
import json
import re

import grpc
import numpy as np
import requests
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import EMULATED, MODELS, identity_model, metric_sum, wait_for
from test_lifecycle import inflight, slow_model


def slow_repository(tmp_path, extra=""):
    repo = tmp_path / "repo"
    # Over a second a request natively. Under emulation four times the usual share of layers (~20 s a request):
    # there a /metrics scrape is slow enough that the running request could finish between the test seeing the
    # queue full and its next request arriving (seen once in CI).
    slow_model(repo / "slow" / "1" / "model.onnx", depth=4096 if EMULATED else 1024)
    (repo / "slow" / "config.pbtxt").write_text('backend: "onnxruntime"\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n' + extra)
    return repo


def slow_request():
    x = np.ones((256, 1024), dtype=np.float32)
    req = pb.ModelInferRequest(model_name="slow")
    req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    return req


def count(server, model, code):
    return metric_sum(server.metrics_text(), "inference_requests_total", model=model, code=code)


def executions(server, model):
    return metric_sum(server.metrics_text(), "inference_executions_total", model=model)


def test_a_deadline_that_passes_while_queued_is_deadline_exceeded_and_never_runs(tmp_path, make_server):
    s = make_server(slow_repository(tmp_path))
    with grpc.insecure_channel(s.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        first = stub.ModelInfer.future(slow_request(), timeout=120)
        wait_for(lambda: inflight(s) >= 1, what="the first request running")
        try:
            stub.ModelInfer(slow_request(), timeout=0.3)
            raise AssertionError("a request queued past its deadline must fail")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first.result()
    wait_for(lambda: count(s, "slow", "DEADLINE_EXCEEDED") == 1, what="the server's DEADLINE_EXCEEDED")
    assert executions(s, "slow") == 1, "the expired request ran"


def test_a_full_queue_is_429_resource_exhausted(tmp_path, make_server):
    s = make_server(slow_repository(tmp_path, "dynamic_batching { default_queue_policy { max_queue_size: 1 } }\n"))
    body = json.dumps({"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 1024], "data": [1.0] * 1024}]})
    with grpc.insecure_channel(s.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        running = stub.ModelInfer.future(slow_request(), timeout=120)
        wait_for(lambda: inflight(s) >= 1, what="one running")
        queued = stub.ModelInfer.future(slow_request(), timeout=120)
        wait_for(lambda: inflight(s) >= 2, what="one queued")
        r = requests.post(s.http + "/v2/models/slow/infer", data=body, timeout=10)
        assert r.status_code == 429 and "queue is full" in r.json()["error"], r.text
        running.result()
        queued.result()
    wait_for(lambda: count(s, "slow", "RESOURCE_EXHAUSTED") == 1, what="the RESOURCE_EXHAUSTED count")
    # Triton's name for it: a scheduler rejection.
    text = s.metrics_text()
    assert metric_sum(text, "nv_inference_request_failure", model="slow", reason="REJECTED") == 1
    assert metric_sum(text, "nv_inference_request_success", model="slow") == 2


def test_v1_on_a_model_that_is_not_tabular_is_failed_precondition(tmp_path, make_server):
    identity_model(tmp_path, "cube", [None, 2, 2])
    s = make_server(tmp_path)
    r = requests.post(s.http + "/v1/infer", json={"model": "cube", "rows": [{"values": [1, 2, 3, 4]}]})
    assert r.status_code == 400
    assert r.json()["code"] == 9 and "use the v2 API" in r.json()["message"]  # FAILED_PRECONDITION


def test_default_model_flag_picks_the_model_v1_requests_without_one_use(make_server, datasets):
    s = make_server(MODELS, "--default-model", "digits")
    row = datasets["digits"].data[0].tolist()
    r = requests.post(s.http + "/v1/infer", json={"rows": [{"values": row}]})
    assert r.status_code == 200 and r.json()["model"] == "digits"


def test_text_log_format_writes_key_value_lines(make_server):
    s = make_server(MODELS, "--log-format", "text")
    requests.get(s.http + "/v2/models/nope")
    lines = [l for l in s.log_text().splitlines() if l.strip()]
    assert lines and not any(l.startswith("{") for l in lines)
    started = [l for l in lines if "server started" in l]
    assert started and re.search(r"\bgrpc_port=\d+", started[0]), started


def test_access_log_sample_rate_zero_logs_failures_only(make_server):
    s = make_server(MODELS, "--access-log-sample-rate", "0")
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 10], "data": [0.01] * 10}]}
    for _ in range(5):
        assert requests.post(s.http + "/v2/models/diabetes/infer", json=body).status_code == 200
    assert requests.post(s.http + "/v2/models/diabetes/infer", json={"inputs": []}).status_code == 400
    lines = s.wait_for_log(lambda l: l["msg"] == "request" and l["status"] != "OK")
    statuses = [l["status"] for l in lines if l["msg"] == "request"]
    assert statuses == ["INVALID_ARGUMENT"], statuses
