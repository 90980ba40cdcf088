"""Dynamic batching (Triton's `dynamic_batching` block): requests from every protocol are stacked into one
execution and each gets exactly its own rows back; queue policies, priorities and deadlines as Triton has
them. The scheduler's unit tests (src/core/scheduler_test.cc) cover the timing rules one by one."""
import json
import shutil
import threading

import grpc
import numpy as np
import requests
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import MODELS, metric_sum, wait_for
from inference.v1 import inference_pb2, inference_pb2_grpc
from test_lifecycle import inflight, slow_model

BATCHING = 'dynamic_batching { max_queue_delay_microseconds: 20000 }\n'


def batching_repository(tmp_path, extra=BATCHING):
    repo = tmp_path / "repo"
    shutil.copytree(MODELS / "breast_cancer", repo / "breast_cancer")
    config = repo / "breast_cancer" / "config.pbtxt"
    # One instance, so concurrent requests queue and stack.
    config.write_text(config.read_text().replace("count: 2", "count: 1") + extra)
    return repo


def v2_body(x, parameters=None):
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}
    if parameters:
        body["parameters"] = parameters
    return body


def v2_grpc_request(x, model="breast_cancer", parameters=None):
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.astype(np.float32).tobytes())
    for key, value in (parameters or {}).items():
        req.parameters[key].int64_param = value
    return req


def test_concurrent_requests_over_every_protocol_are_batched_and_get_their_own_rows(tmp_path, make_server,
                                                                                   datasets):
    data = datasets["breast_cancer"].data.astype(np.float32)
    s = make_server(batching_repository(tmp_path))
    channel = grpc.insecure_channel(s.grpc_target)
    v2 = pb_grpc.GRPCInferenceServiceStub(channel)
    v1 = inference_pb2_grpc.InferenceServiceStub(channel)

    def v2_rest(x):
        r = requests.post(s.http + "/v2/models/breast_cancer/infer", json=v2_body(x), timeout=30)
        assert r.status_code == 200, r.text
        out = {o["name"]: o for o in r.json()["outputs"]}["probabilities"]
        return np.array(out["data"], np.float32).reshape(len(x), 2)

    def v2_grpc(x):
        r = v2.ModelInfer(v2_grpc_request(x), timeout=30)
        k = [o.name for o in r.outputs].index("probabilities")
        return np.frombuffer(r.raw_output_contents[k], np.float32).reshape(len(x), 2)

    def v1_rest(x):
        r = requests.post(s.http + "/v1/infer", timeout=30,
                          json={"model": "breast_cancer", "rows": [{"values": row.tolist()} for row in x]})
        assert r.status_code == 200, r.text
        return np.array([p["scores"] for p in r.json()["predictions"]], np.float32)

    def v1_grpc(x):
        r = v1.Infer(inference_pb2.InferRequest(model="breast_cancer",
                                                rows=[inference_pb2.Row(values=row) for row in x]), timeout=30)
        return np.array([list(p.scores) for p in r.predictions], np.float32)

    protocols = [v2_rest, v2_grpc, v1_rest, v1_grpc]
    # Each client sends 1 to 3 rows of its own; first alone (nothing to stack with), then all at once.
    work = [(protocols[i % 4], data[i * 3:i * 3 + 1 + i % 3]) for i in range(48)]
    alone = [call(x) for call, x in work]
    executions_alone = metric_sum(s.metrics_text(), "inference_executions_total", model="breast_cancer")
    assert executions_alone == len(work)

    results, errors = [None] * len(work), []
    go = threading.Barrier(len(work))

    def client(i):
        call, x = work[i]
        go.wait()
        try:
            for _ in range(5):
                got = call(x)
                results[i] = got
        except Exception as e:  # noqa: BLE001
            errors.append(f"{call.__name__}: {e!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    # ONNX Runtime itself may round the last bit differently for a batch of N rows than for one row (1.2e-7
    # at most on this model, measured against onnxruntime in Python): equal within 1e-6, which no mix-up of
    # rows between requests would be.
    for (call, x), got, want in zip(work, results, alone):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6,
                                   err_msg=f"{call.__name__}: batched answer differs from alone")

    text = s.metrics_text()
    executions = metric_sum(text, "inference_executions_total", model="breast_cancer") - executions_alone
    rows = sum(len(x) for _, x in work) * 5
    assert metric_sum(text, "inference_rows_total", model="breast_cancer") == rows + sum(len(x) for _, x in work)
    assert executions < len(work) * 5, "no request was stacked with another"
    # The batch-size histogram counts executions of more than one row.
    big = metric_sum(text, "inference_batch_size_count", model="breast_cancer") - \
        metric_sum(text, "inference_batch_size_bucket", model="breast_cancer", le="4")
    assert big > 0, "no execution of more than 4 rows"
    # Triton's statistics: executions and inferences as Triton counts them.
    stats = requests.get(s.http + "/v2/models/breast_cancer/stats").json()["model_stats"][0]
    assert stats["execution_count"] == executions + executions_alone
    assert stats["inference_count"] == rows + sum(len(x) for _, x in work)
    assert stats["inference_stats"]["success"]["count"] == len(work) * 6
    assert any(b["batch_size"] > 4 for b in stats["batch_stats"])
    channel.close()


def slow_batching_repository(tmp_path, policy):
    repo = tmp_path / "repo"
    slow_model(repo / "slow" / "1" / "model.onnx", depth=1024)  # seconds for 256 rows
    (repo / "slow" / "config.pbtxt").write_text(
        'backend: "onnxruntime"\nmax_batch_size: 256\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n'
        f'dynamic_batching {{ {policy} }}\n')
    return repo


def executing(s):
    """Whether the slow model's first request has left the queue for an execution (its queue time is observed
    then). `inflight` counts a request from its admission, which under emulation can be well before that."""
    return metric_sum(s.metrics_text(), "inference_queue_duration_seconds_count", model="slow") >= 1


def slow_rows(n):
    return np.ones((n, 1024), dtype=np.float32)


def test_requests_that_time_out_or_pass_their_deadline_in_the_queue_never_reach_the_model(tmp_path, make_server):
    s = make_server(slow_batching_repository(
        tmp_path, "default_queue_policy { allow_timeout_override: true default_timeout_microseconds: 60000000 }"))
    with grpc.insecure_channel(s.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        first = stub.ModelInfer.future(v2_grpc_request(slow_rows(256), "slow"), timeout=120)  # a full batch
        wait_for(lambda: executing(s), what="the first request running")
        try:
            stub.ModelInfer(v2_grpc_request(slow_rows(1), "slow"), timeout=0.3)
            raise AssertionError("a request queued past its deadline must fail")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # Triton's `timeout` parameter (microseconds) shortens the queue policy's timeout.
        r = requests.post(s.http + "/v2/models/slow/infer", timeout=120,
                          json=v2_body(slow_rows(1), {"timeout": 100000}))
        assert r.status_code == 504 and "timed out after 100000 us in the queue" in r.json()["error"], r.text
        first.result()
    wait_for(lambda: metric_sum(s.metrics_text(), "inference_requests_total", model="slow",
                                code="DEADLINE_EXCEEDED") == 2, what="two DEADLINE_EXCEEDED")
    assert metric_sum(s.metrics_text(), "inference_executions_total", model="slow") == 1, "an expired request ran"


def test_a_full_queue_answers_at_once_while_the_model_is_busy(tmp_path, make_server):
    s = make_server(slow_batching_repository(tmp_path, "default_queue_policy { max_queue_size: 1 }"))
    with grpc.insecure_channel(s.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        running = stub.ModelInfer.future(v2_grpc_request(slow_rows(256), "slow"), timeout=120)
        wait_for(lambda: executing(s), what="one running")
        queued = stub.ModelInfer.future(v2_grpc_request(slow_rows(1), "slow"), timeout=120)
        wait_for(lambda: inflight(s) >= 2, what="one queued")
        r = requests.post(s.http + "/v2/models/slow/infer", json=v2_body(slow_rows(1)), timeout=10)
        assert r.status_code == 429 and "queue is full" in r.json()["error"] and r.headers.get("Retry-After"), r.text
        # Refused before its body is parsed (the parse is most of a refusal's cost under overload): a body
        # that is not JSON at all gets the same 429, not a 400.
        r = requests.post(s.http + "/v2/models/slow/infer", data=b"{not json", timeout=10)
        assert r.status_code == 429 and "queue is full" in r.json()["error"], r.text
        try:
            stub.ModelInfer(v2_grpc_request(slow_rows(1), "slow"), timeout=10)
            raise AssertionError("the queue is full")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not running.done(), "the refusals waited for the model"
        running.result()
        queued.result()


def test_priority_and_timeout_parameters_are_checked_on_both_protocols(tmp_path, make_server):
    repo = batching_repository(tmp_path, "dynamic_batching { priority_levels: 2 default_priority_level: 2 }\n")
    s = make_server(repo)
    assert "schedule_policy" in requests.get(s.http + "/v2").json()["extensions"]
    x = np.zeros((1, 30), np.float32)
    with grpc.insecure_channel(s.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        for params in ({"priority": 1}, {"priority": 2}, {"priority": 0}, {"timeout": 5000000}):
            r = requests.post(s.http + "/v2/models/breast_cancer/infer", json=v2_body(x, params))
            assert r.status_code == 200, (params, r.text)
            stub.ModelInfer(v2_grpc_request(x, parameters=params))
        for params, words in (({"priority": 3}, "priority 3 is not a priority level"),
                              ({"priority": -1}, "parameters.priority must be a non-negative integer"),
                              ({"timeout": -5}, "parameters.timeout must be a non-negative integer")):
            r = requests.post(s.http + "/v2/models/breast_cancer/infer", json=v2_body(x, params))
            assert r.status_code == 400 and words in r.json()["error"], (params, r.text)
            try:
                stub.ModelInfer(v2_grpc_request(x, parameters=params))
                raise AssertionError(f"{params} accepted over gRPC")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and words in e.details(), (params, e.details())
        r = requests.post(s.http + "/v2/models/breast_cancer/infer", json=v2_body(x, {"priority": "high"}))
        assert r.status_code == 400 and "parameters.priority" in r.json()["error"], r.text
