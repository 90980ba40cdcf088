"""Model control as Triton defines it (--model-control-mode none|poll|explicit): repository load/unload is refused
unless the mode is explicit, over REST and gRPC, counted and logged; none serves what was there at startup, poll
rescans, explicit loads only --load-model models."""
import shutil
import subprocess
import time

import grpc
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from conftest import BINARY, MODELS, identity_model, metric_sum, wait_for

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
    r = subprocess.run([str(BINARY), "--model-repository", str(MODELS), *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and words in r.stderr, r.stderr
