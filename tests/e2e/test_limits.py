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


def test_refusals_before_routing_answer_in_the_shape_of_the_api_asked(make_server):
    """A body over the limit, headers over the limit or a malformed request is refused by the transport before any
    route runs; the error still comes in the shape of the API the path belongs to: {"error": ...} under /v2,
    google.rpc.Status JSON under /v1."""
    s = make_server(MODELS, "--max-request-bytes", "65536")
    big = b"x" * 70000
    v2 = requests.post(s.http + "/v2/models/digits/infer", data=big)
    assert v2.status_code == 413 and set(v2.json()) == {"error"} and "--max-request-bytes" in v2.json()["error"]
    v1 = requests.post(s.http + "/v1/infer", data=big)
    assert v1.status_code == 413 and v1.json()["code"] == 8
    huge_header = {"X-Filler": "y" * 70000}
    v2 = requests.get(s.http + "/v2/models/digits", headers=huge_header)
    assert v2.status_code == 431 and set(v2.json()) == {"error"}, v2.text
    v1 = requests.get(s.http + "/v1/models", headers=huge_header)
    assert v1.status_code == 431 and v1.json()["code"] == 8, v1.text
    import socket
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=5) as raw:
        raw.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    b"Content-Length: 2\r\n\r\nab")
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 400") and answer.split("\r\n\r\n", 1)[1].startswith('{"error":'), answer


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
