"""KServe v2 / Open Inference Protocol with standard clients (tritonclient, kserve SDK), plain HTTP and grpcio."""
import json
import pathlib
import subprocess
import sys

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

# tritonclient's own generated stubs for raw calls: an independent copy of the protocol's messages.
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

TOL = 1e-5


@pytest.fixture(scope="module")
def v2stub(channel):
    return pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_tritonclient_http_binary_and_json_match_onnxruntime(server, reference, datasets, model):
    x = datasets[model].data[:32].astype(np.float32)
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    ref = reference(model, x)
    for binary in (True, False):
        inp = thttp.InferInput("X", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        outs = [thttp.InferRequestedOutput(name, binary_data=binary) for name in ref]
        result = client.infer(model, [inp], outputs=outs, request_id="t1")
        assert result.get_response()["id"] == "t1"
        for name, values in ref.items():
            np.testing.assert_allclose(result.as_numpy(name), values, atol=TOL)
    # tritonclient's defaults: binary input, no outputs listed (all outputs, binary by default).
    inp = thttp.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp])
    for name, values in ref.items():
        np.testing.assert_allclose(result.as_numpy(name), values, atol=TOL)


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_tritonclient_grpc_matches_onnxruntime(server, reference, datasets, model):
    x = datasets[model].data[:32].astype(np.float32)
    client = tgrpc.InferenceServerClient(server.grpc_target)
    inp = tgrpc.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp], request_id="g1")
    assert result.get_response().id == "g1"
    for name, values in reference(model, x).items():
        np.testing.assert_allclose(result.as_numpy(name), values, atol=TOL)


def test_tritonclient_health_metadata_and_index(server):
    for client in (thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}"),
                   tgrpc.InferenceServerClient(server.grpc_target)):
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("digits") and client.is_model_ready("digits", "1")
        if isinstance(client, thttp.InferenceServerClient):
            assert not client.is_model_ready("digits", "2")  # HTTP: 404, which tritonclient reads as not ready
        else:
            with pytest.raises(InferenceServerException, match="has no version 2"):  # gRPC: NOT_FOUND
                client.is_model_ready("digits", "2")
        meta = client.get_model_metadata("breast_cancer", as_json=True) if isinstance(
            client, tgrpc.InferenceServerClient) else client.get_model_metadata("breast_cancer")
        assert meta["name"] == "breast_cancer" and meta["versions"] == ["1"]
        assert meta["inputs"][0]["datatype"] == "FP32" and [int(d) for d in meta["inputs"][0]["shape"]] == [-1, 30]
        index = client.get_model_repository_index(as_json=True) if isinstance(
            client, tgrpc.InferenceServerClient) else client.get_model_repository_index()
        models = index["models"] if isinstance(index, dict) else index
        assert sorted((m["name"], m["state"]) for m in models) == [
            ("breast_cancer", "READY"), ("diabetes", "READY"), ("digits", "READY")]


def test_kserve_sdk_rest_and_grpc(server, reference, datasets):
    # The kserve SDK registers its own copy of the v2 protos, so it runs in a process of its own.
    x = datasets["breast_cancer"].data[:8].astype(np.float32)
    np.save(server.log_path.parent / "x.npy", x)
    out = subprocess.run([sys.executable, str(pathlib.Path(__file__).parent / "kserve_client.py"), server.http,
                          server.grpc_target, str(server.log_path.parent / "x.npy")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    ref = reference("breast_cancer", x)
    assert result["ready"]
    for proto in ("rest", "grpc"):
        np.testing.assert_allclose(np.array(result[proto]["probabilities"], dtype=np.float32).reshape(8, 2),
                                   ref["probabilities"], atol=TOL)
        assert [int(v) for v in np.array(result[proto]["label"]).reshape(-1)] == ref["label"].tolist()


def test_plain_json_with_nested_data_and_versioned_path(server, reference, datasets):
    x = datasets["diabetes"].data[:3].astype(np.float32)
    body = {"inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}]}
    r = requests.post(server.http + "/v2/models/diabetes/versions/1/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["name"] == "variable" and out["datatype"] == "FP32" and out["shape"] == [3, 1]
    np.testing.assert_allclose(np.array(out["data"]).reshape(3, 1), reference("diabetes", x)["variable"], atol=TOL)


def test_grpc_typed_contents_equal_raw_contents(server, v2stub, reference, datasets):
    x = datasets["digits"].data[:4].astype(np.float32)
    typed = pb.ModelInferRequest(model_name="digits", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="FP32", shape=list(x.shape), contents=pb.InferTensorContents(fp32_contents=x.ravel()))],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="probabilities")])
    resp = v2stub.ModelInfer(typed)
    assert [o.name for o in resp.outputs] == ["probabilities"]
    got = np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).reshape(4, 10)
    np.testing.assert_allclose(got, reference("digits", x)["probabilities"], atol=TOL)


def test_v2_rest_metadata_and_health_routes(server):
    assert requests.get(server.http + "/v2/health/live").json() == {"live": True}
    assert requests.get(server.http + "/v2/health/ready").json() == {"ready": True}
    meta = requests.get(server.http + "/v2").json()
    assert meta["name"] == "inference-server" and "model_repository" in meta["extensions"]
    m = requests.get(server.http + "/v2/models/digits/versions/1").json()
    assert m["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert requests.get(server.http + "/v2/models/digits/ready").status_code == 200
    index = requests.post(server.http + "/v2/repository/index", json={"ready": True}).json()
    assert [m["name"] for m in index] == ["breast_cancer", "diabetes", "digits"]


def x_input(shape=(1, 30), datatype="FP32", data=None):
    n = int(np.prod(shape)) if all(d >= 0 for d in shape) else 1
    return {"name": "X", "shape": list(shape), "datatype": datatype, "data": data if data is not None else [0.5] * n}


BAD_V2 = [
    # (path, body, status, words)
    ("/v2/models/nope/infer", {"inputs": [x_input()]}, 404, "model 'nope' not found"),
    ("/v2/models/breast_cancer/versions/9/infer", {"inputs": [x_input()]}, 404, "has no version 9"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(datatype="FP64")]}, 400,
     "datatype FP64 does not match the model's FP32"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(datatype="FP8")]}, 400, "'FP8' is not a KServe v2 datatype"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(shape=(1, 29))]}, 400, "does not match the model's [-1,30]"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(shape=(30,))]}, 400, "has rank 1"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(shape=(2, 30), data=[1.0] * 30)]}, 400,
     "has 120 bytes of data, shape [2,30] of FP32 needs 240"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(data=["a"] * 30)]}, 400, "is not a valid FP32"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(shape=(-1, 30))]}, 400, "negative dimension"),
    ("/v2/models/breast_cancer/infer", {"inputs": []}, 400, "inputs is missing or empty"),
    ("/v2/models/breast_cancer/infer", {"inputs": [dict(x_input(), name="Y")]}, 400, "'Y' is not an input"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(), x_input()]}, 400, "given more than once"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input()], "outputs": [{"name": "nope"}]}, 400,
     "requested output 'nope'"),
    ("/v2/models/breast_cancer/infer", {"inputs": [{"name": "X", "datatype": "FP32"}]}, 400, "shape is missing"),
    ("/v2/models/breast_cancer/infer", {"inputs": [x_input(shape=(4611686018427387904, 30))]}, 400, "too large"),
    ("/v2/models/breast_cancer/bogus", {}, 404, "no route"),
    ("/v2/models/breast_cancer/versions/1/infer/extra", {}, 404, "no route"),
]


@pytest.mark.parametrize("method,path,body,status,words", [
    ("GET", "/v2/models/nope", None, 404, "model 'nope' not found"),
    ("GET", "/v2/models/nope/ready", None, 404, "model 'nope' not found"),
    ("GET", "/v2/models/digits/versions/0", None, 400, "not a positive integer"),
    ("GET", "/v2/models/digits/versions/5/ready", None, 404, "has no version 5"),
    ("POST", "/v2/models/digits", None, 405, "method not allowed, use GET"),
    ("GET", "/v2/models/digits/infer", None, 405, "method not allowed, use POST"),
    ("POST", "/v2/repository/index", b"[1,2]", 400, "must be a JSON object"),
    ("POST", "/v2/repository/index", b'{"ready": "yes"}', 400, "ready must be a boolean"),
    ("GET", "/v2/repository/index", None, 405, "method not allowed, use POST"),
    ("GET", "/v2/nothing", None, 404, "no route"),
])
def test_bad_v2_metadata_requests(server, method, path, body, status, words):
    r = requests.request(method, server.http + path, data=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


@pytest.mark.parametrize("path,body,status,words", BAD_V2)
def test_bad_v2_requests_get_clear_errors(server, path, body, status, words):
    r = requests.post(server.http + path, json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


@pytest.mark.parametrize("body,headers,words", [
    (b"{nope", {}, "not valid JSON"),
    (b'{"inputs":[{"name":"X","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}]}',
     {"Inference-Header-Content-Length": "500"}, "exceeds the body size"),
    (b'{"inputs":[{"name":"X","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}]}' + b"\0" * 8,
     {"Inference-Header-Content-Length": "96"}, "exceeds the binary data sent"),
    (b'{"inputs":[{"name":"X","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":8}}]}' + b"\0" * 16,
     {"Inference-Header-Content-Length": "94"}, "not claimed"),
    (b"{}", {"Inference-Header-Content-Length": "abc"}, "is not a number"),
    (b"{}", {"Content-Encoding": "gzip"}, "Content-Encoding 'gzip' is not supported"),
])
def test_hostile_binary_requests_are_rejected(server, body, headers, words):
    r = requests.post(server.http + "/v2/models/breast_cancer/infer", data=body, headers=headers)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]


def test_grpc_errors_carry_canonical_codes(server, v2stub):
    def infer(**kw):
        with pytest.raises(grpc.RpcError) as e:
            v2stub.ModelInfer(pb.ModelInferRequest(**kw))
        return e.value

    e = infer(model_name="nope", inputs=[pb.ModelInferRequest.InferInputTensor(name="X", datatype="FP32", shape=[1, 30])],
              raw_input_contents=[b"\0" * 120])
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = infer(model_name="breast_cancer", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="FP32", shape=[1, 30])], raw_input_contents=[b"\0" * 7])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "has 7 bytes" in e.details()
    e = infer(model_name="breast_cancer", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="FP32", shape=[1, 30], contents=pb.InferTensorContents(int_contents=[1] * 30))])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "contents.fp32_contents" in e.details()
    e = infer(model_name="breast_cancer", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="FP32", shape=[1, 30])], raw_input_contents=[b"", b""])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "raw_input_contents has 2 entries" in e.details()
    with pytest.raises(grpc.RpcError) as err:
        v2stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(InferenceServerException):
        tgrpc.InferenceServerClient(server.grpc_target).get_model_metadata("nope")
