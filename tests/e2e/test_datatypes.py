"""FP16, BF16 and BYTES over every protocol: v2 REST JSON, the binary tensor extension and gRPC (raw and,
for BYTES, typed contents). Outputs are checked against onnxruntime (Python) on the same model files and,
for the JSON number conversions, against numpy's float16 and ml_dtypes' bfloat16 rounding."""
import json
import struct

import grpc
import ml_dtypes
import numpy as np
import onnxruntime as ort
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from onnx import TensorProto
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import identity_model

TYPES = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16, "bytes": TensorProto.STRING}


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    from conftest import Server

    repo = tmp_path_factory.mktemp("typed")
    for name, t in TYPES.items():
        identity_model(repo, name, [-1, 3], elem_type=t)
    s = Server(repo, tmp_path=repo).wait_ready()
    yield s, repo
    assert s.stop() == 0, s.log_text()[-3000:]


def reference(repo, name, x):
    return ort.InferenceSession(str(repo / name / "1" / "model.onnx")).run(None, {"X": x})[0]


def rest_json(server, model, datatype, data, shape=(2, 3)):
    body = {"inputs": [{"name": "X", "shape": list(shape), "datatype": datatype, "data": data}]}
    return requests.post(f"{server.http}/v2/models/{model}/infer", json=body, timeout=10)


VALUES = [[0.1, 65504.0, -2.5], [1e-7, 3.14159265, -0.0]]


def test_fp16_over_rest_json_rounds_as_ieee_half(typed):
    server, repo = typed
    r = rest_json(server, "fp16", "FP16", VALUES)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == "FP16" and out["shape"] == [2, 3]
    want = reference(repo, "fp16", np.array(VALUES, dtype=np.float16))
    np.testing.assert_array_equal(np.array(out["data"], dtype=np.float32).reshape(2, 3), want.astype(np.float32))


def test_bf16_over_rest_json_rounds_as_bfloat16(typed):
    server, _ = typed
    r = rest_json(server, "bf16", "BF16", VALUES)
    assert r.status_code == 200, r.text
    want = np.array(VALUES, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(np.array(r.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, 3), want)


@pytest.mark.parametrize("model,datatype,value", [("fp16", "FP16", 70000), ("bf16", "BF16", 1e39),
                                                  ("fp16", "FP16", "x"), ("bytes", "BYTES", 1)])
def test_values_a_datatype_cannot_hold_are_refused(typed, model, datatype, value):
    server, _ = typed
    r = rest_json(server, model, datatype, [value, value, value], shape=(1, 3))
    assert r.status_code == 400
    assert f"is not a valid {datatype}" in r.json()["error"], r.text


def test_fp16_over_the_binary_extension_and_grpc_matches_onnxruntime(typed):
    server, repo = typed
    x = np.array(VALUES, dtype=np.float16)
    want = reference(repo, "fp16", x)
    http = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    inp = thttp.InferInput("X", list(x.shape), "FP16")
    inp.set_data_from_numpy(x, binary_data=True)
    got = http.infer("fp16", [inp], outputs=[thttp.InferRequestedOutput("Y", binary_data=True)]).as_numpy("Y")
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)
    g = tgrpc.InferenceServerClient(server.grpc_target)
    ginp = tgrpc.InferInput("X", list(x.shape), "FP16")
    ginp.set_data_from_numpy(x)
    np.testing.assert_array_equal(g.infer("fp16", [ginp]).as_numpy("Y"), want)


def test_bf16_raw_bytes_pass_unchanged_over_the_binary_extension_and_grpc(typed):
    server, _ = typed
    x = np.array(VALUES, dtype=np.float32).astype(ml_dtypes.bfloat16)
    raw = x.view(np.uint16).tobytes()
    header = json.dumps({"inputs": [{"name": "X", "shape": [2, 3], "datatype": "BF16",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": "Y", "parameters": {"binary_data": True}}]}).encode()
    r = requests.post(f"{server.http}/v2/models/bf16/infer", data=header + raw, timeout=10,
                      headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    head = int(r.headers["Inference-Header-Content-Length"])
    assert r.content[head:] == raw
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    resp = stub.ModelInfer(pb.ModelInferRequest(model_name="bf16", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="BF16", shape=[2, 3])], raw_input_contents=[raw]))
    assert resp.outputs[0].datatype == "BF16" and resp.raw_output_contents[0] == raw


STRINGS = [["a", "", "héllo"], ["x\x00y", "longer string", "z"]]


def test_bytes_over_rest_json_binary_and_grpc_match_onnxruntime(typed):
    server, repo = typed
    x = np.array(STRINGS, dtype=object)
    want = reference(repo, "bytes", x)
    r = rest_json(server, "bytes", "BYTES", STRINGS)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == "BYTES" and out["data"] == [s for row in want.tolist() for s in row]

    xb = np.array([[s.encode() for s in row] for row in STRINGS], dtype=object)
    http = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    inp = thttp.InferInput("X", [2, 3], "BYTES")
    inp.set_data_from_numpy(xb, binary_data=True)
    got = http.infer("bytes", [inp], outputs=[thttp.InferRequestedOutput("Y", binary_data=True)]).as_numpy("Y")
    assert got.tolist() == xb.tolist()
    g = tgrpc.InferenceServerClient(server.grpc_target)
    ginp = tgrpc.InferInput("X", [2, 3], "BYTES")
    ginp.set_data_from_numpy(xb)
    assert g.infer("bytes", [ginp]).as_numpy("Y").tolist() == xb.tolist()
    # Typed contents: bytes_contents, one entry per element.
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    resp = stub.ModelInfer(pb.ModelInferRequest(model_name="bytes", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="X", datatype="BYTES", shape=[2, 3], contents=pb.InferTensorContents(
            bytes_contents=[s for row in xb.tolist() for s in row]))]))
    raw = resp.raw_output_contents[0]
    elements, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        elements.append(raw[at + 4:at + 4 + n])
        at += 4 + n
    assert elements == [s for row in xb.tolist() for s in row]


def test_malformed_bytes_and_fp16_contents_are_refused_with_their_reason(typed):
    server, _ = typed
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
    bad = struct.pack("<I", 1) + b"a" + struct.pack("<I", 1) + b"b" + struct.pack("<I", 100) + b"short"
    with pytest.raises(grpc.RpcError) as e:  # the third element says 100 bytes and has 5
        stub.ModelInfer(pb.ModelInferRequest(model_name="bytes", inputs=[pb.ModelInferRequest.InferInputTensor(
            name="X", datatype="BYTES", shape=[1, 3])], raw_input_contents=[bad]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "BYTES data is malformed" in e.value.details()
    header = json.dumps({"inputs": [{"name": "X", "shape": [1, 3], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": len(bad)}}]}).encode()
    r = requests.post(f"{server.http}/v2/models/bytes/infer", data=header + bad, timeout=10,
                      headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 400 and "BYTES data is malformed" in r.json()["error"], r.text
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(pb.ModelInferRequest(model_name="fp16", inputs=[pb.ModelInferRequest.InferInputTensor(
            name="X", datatype="FP16", shape=[1, 3], contents=pb.InferTensorContents(fp32_contents=[1, 2, 3]))]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "raw_input_contents" in e.value.details()
