"""Request size limits and hostile input: clear errors, and the server keeps serving everyone else."""
import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException

from conftest import MODELS


def test_body_over_the_limit_is_rejected_on_rest_and_grpc(make_server, datasets):
    s = make_server(MODELS, "--max-request-bytes", "65536")
    big = {"model": "breast_cancer", "rows": [{"values": [1.0] * 30}] * 400}  # ~70 KB of JSON
    r = requests.post(s.http + "/v1/infer", json=big)
    assert r.status_code == 413
    assert r.json()["code"] == 8 and "--max-request-bytes" in r.json()["message"]  # JSON, RESOURCE_EXHAUSTED
    client = tgrpc.InferenceServerClient(s.grpc_target)
    x = np.zeros((1000, 30), dtype=np.float32)  # 120 KB
    inp = tgrpc.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    try:
        client.infer("breast_cancer", [inp])
        raise AssertionError("an oversized gRPC message must be refused")
    except InferenceServerException as e:
        assert "RESOURCE_EXHAUSTED" in str(e.status()) or "larger than max" in str(e)
    # Still serving.
    x = datasets["breast_cancer"].data[:2].tolist()
    ok = requests.post(s.http + "/v1/infer", json={"model": "breast_cancer", "rows": [{"values": v} for v in x]})
    assert ok.status_code == 200


def test_garbage_bytes_do_not_hurt_the_server(server, datasets):
    rng = np.random.default_rng(1)
    for i in range(50):
        junk = rng.bytes(int(rng.integers(1, 2000)))
        for path in ["/v1/infer", "/v2/models/digits/infer", "/v2/repository/index"]:
            r = requests.post(server.http + path, data=junk)
            assert 400 <= r.status_code < 500, (path, r.status_code)
    with grpc.insecure_channel(server.grpc_target) as ch:
        call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        for i in range(20):
            # Undecodable: INVALID_ARGUMENT; bytes that happen to decode name no model: NOT_FOUND / INVALID_ARGUMENT.
            with pytest.raises(grpc.RpcError) as e:
                call(rng.bytes(int(rng.integers(1, 500))))
            assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), e.value
    x = datasets["digits"].data[:1].tolist()
    assert requests.post(server.http + "/v1/infer", json={"model": "digits", "rows": [{"values": x[0]}]}).ok
