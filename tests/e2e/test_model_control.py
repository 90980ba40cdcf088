"""Model control as Triton defines it (--model-control-mode none|poll|explicit): repository load/unload is refused
unless the mode is explicit, over REST and gRPC, counted and logged; none serves what was there at startup, poll
rescans, explicit loads only --load-model models."""
import shutil
import time

import grpc
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from conftest import EMULATED, MODELS, identity_model, metric_sum, refusal, wait_for

TRITON_WORDS = "explicit model load / unload is not allowed if polling is enabled"


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "models"
    shutil.copytree(MODELS, path)
    return path


@pytest.mark.parametrize("mode", [(), ("--model-control-mode", "none"), ("--model-control-mode", "poll")])
def test_repository_load_and_unload_are_refused_unless_explicit(repo, make_server, mode):
    s = make_server(repo, *mode)
    for action in ["unload", "load"]:
        r = requests.post(s.http + f"/v2/repository/models/breast_cancer/{action}")
        assert r.status_code == 400, r.text
        assert TRITON_WORDS in r.json()["error"] and "--model-control-mode=explicit" in r.json()["error"]
        with pytest.raises(grpc.RpcError) as e:
            stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(s.grpc_target))
            call = stub.RepositoryModelUnload if action == "unload" else stub.RepositoryModelLoad
            call(pb.RepositoryModelUnloadRequest(model_name="breast_cancer") if action == "unload"
                 else pb.RepositoryModelLoadRequest(model_name="breast_cancer"))
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and TRITON_WORDS in e.value.details()
    assert requests.get(s.http + "/v2/models/breast_cancer/ready").status_code == 200, "the model is still served"
    text = s.metrics_text()
    for action in ["load", "unload"]:
        assert metric_sum(text, "inference_model_control_requests_total", action=action,
                          code="FAILED_PRECONDITION") == 2
    refused = [l for l in s.log_lines() if l.get("msg") == "model control" and l["status"] == "FAILED_PRECONDITION"]
    assert len(refused) == 4


def test_the_default_mode_is_none_and_does_not_poll(repo, make_server):
    s = make_server(repo)
    started = next(l for l in s.log_lines() if l.get("msg") == "loading models")
    assert started["model_control_mode"] == "none" and started["poll_ms"] == 0
    identity_model(repo, "dropped_in", [None, 2], config="max_batch_size: 4\n")
    time.sleep(2.5)  # longer than the poll interval a polling server would use (2 s)
    assert requests.get(s.http + "/v2/models/dropped_in/ready").status_code == 404


def test_poll_mode_serves_a_model_dropped_into_the_repository(repo, make_server):
    s = make_server(repo, "--model-control-mode", "poll", "--repository-poll-ms", "100")
    identity_model(repo, "dropped_in", [None, 2], config="max_batch_size: 4\n")
    wait_for(lambda: requests.get(s.http + "/v2/models/dropped_in/ready").status_code == 200, what="the new model")


def test_explicit_mode_loads_only_the_named_models_then_loads_and_unloads_on_request(repo, make_server):
    s = make_server(repo, "--model-control-mode", "explicit", "--load-model", "digits", "--load-model", "diabetes")
    ready = {m: requests.get(s.http + f"/v2/models/{m}/ready").status_code for m in
             ["digits", "diabetes", "breast_cancer"]}
    assert ready == {"digits": 200, "diabetes": 200, "breast_cancer": 404}
    client = tgrpc.InferenceServerClient(s.grpc_target)
    client.load_model("breast_cancer")
    assert client.is_model_ready("breast_cancer")
    client.unload_model("digits")
    assert not client.is_model_ready("digits")
    with pytest.raises(InferenceServerException):
        client.load_model("nope")


def test_a_load_model_that_fails_is_logged_and_the_others_served(repo, make_server):
    s = make_server(repo, "--model-control-mode", "explicit", "--load-model", "nope", "--load-model", "digits")
    assert requests.get(s.http + "/v2/models/digits/ready").status_code == 200
    assert any(l.get("msg") == "cannot load a --load-model model" and l["model"] == "nope" for l in s.log_lines())


@pytest.mark.parametrize("args,words", [
    (["--model-control-mode", "sometimes"], "must be none, poll or explicit"),
    (["--repository-poll-ms", "100"], "applies to --model-control-mode=poll only"),
    (["--model-control-mode", "explicit", "--repository-poll-secs", "5"], "applies to --model-control-mode=poll"),
    (["--load-model", "digits"], "applies to --model-control-mode=explicit only"),
    (["--model-control-mode", "poll", "--repository-poll-ms", "0"], "within 1..86400000"),
])
def test_contradictory_model_control_flags_are_refused_at_startup(args, words):
    stderr = refusal(*args)
    assert words in stderr, stderr


def slow_model(repository, name, nodes):
    """An ONNX model that takes seconds to load: a chain of `nodes` small MatMul + Relu pairs, which ONNX Runtime
    optimises when it builds the session (in the server's ONNX Runtime, time grows with the square of the chain:
    0.6 s for 1000, 2.2 s for 2000 on the CI machine)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    chain, weights, prev = [], [], "X"
    for i in range(nodes):
        weights.append(numpy_helper.from_array(np.full((4, 4), 0.001 * i, np.float32), f"w{i}"))
        chain += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"h{i}"])]
        prev = f"h{i}"
    chain.append(helper.make_node("Identity", [prev], ["Y"]))
    graph = helper.make_graph(chain, "slow", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (repository / name / "1").mkdir(parents=True)
    onnx.save(model, str(repository / name / "1" / "model.onnx"))
    (repository / name / "config.pbtxt").write_text('backend: "onnxruntime"\nmax_batch_size: 8\n')


def test_a_slow_load_blocks_neither_the_http_loop_nor_grpc(tmp_path, make_server):
    """Loads run on the core's control thread: while a model takes seconds to load, requests on the same (single)
    HTTP event loop and over gRPC keep being answered, and the load's own reply comes when it is done."""
    import concurrent.futures
    import numpy as np

    repo = tmp_path / "models"
    identity_model(repo, "fast", [None, 2], config="max_batch_size: 4\n")
    slow_model(repo, "slow_http", 500 if EMULATED else 2000)
    slow_model(repo, "slow_grpc", 500 if EMULATED else 2000)
    s = make_server(repo, "--model-control-mode", "explicit", "--load-model", "fast", "--http-threads", "1")
    body = {"inputs": [{"name": "X", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    http = requests.Session()
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(s.grpc_target))
    grpc_request = pb.ModelInferRequest(model_name="fast", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="FP32", shape=[1, 2], contents=pb.InferTensorContents(fp32_contents=[1, 2]))])
    stub.ModelInfer(grpc_request)  # connect first
    http.post(s.http + "/v2/models/fast/infer", json=body).raise_for_status()

    def loading(name):
        return any(l.get("msg") == "model state changed" and l.get("model") == name and l["state"] == "LOADING"
                   for l in s.log_lines())

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        loads = [pool.submit(requests.post, s.http + "/v2/repository/models/slow_http/load", timeout=300),
                 pool.submit(stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="slow_grpc"),
                             timeout=300)]
        wait_for(lambda: loading("slow_http") or loading("slow_grpc"), what="a slow load to start")
        answered, slowest = 0, 0.0
        while not all(f.done() for f in loads) and answered < 200:
            start = time.monotonic()
            r = http.post(s.http + "/v2/models/fast/infer", json=body, timeout=10)
            assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1, 2], r.text
            assert np.array(stub.ModelInfer(grpc_request, timeout=10).raw_output_contents[0]).size > 0
            slowest = max(slowest, time.monotonic() - start)
            answered += 1
            time.sleep(0.01)
        still_loading = not all(f.done() for f in loads)
        assert answered >= 5 and still_loading or answered >= 20, (answered, still_loading)
        # Each pair answered at once, not after the load (which takes seconds): well under a second.
        assert slowest < 1.0, slowest
        assert loads[0].result().status_code == 200, loads[0].result().text
        loads[1].result()
    for name in ("slow_http", "slow_grpc"):
        assert requests.get(s.http + f"/v2/models/{name}/ready").status_code == 200
