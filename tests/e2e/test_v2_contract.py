"""One table of mistakes, sent over v2 REST (JSON) and v2 gRPC (tritonclient's own protobuf stubs): each
must get the same answer on both, the same code (HTTP status = the gRPC code's, as Envoy maps it) and the
very same message (frontends/common/v2_contract.h, docs/api.md)."""
import json

import grpc
import pytest
import requests
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

HTTP_FOR = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
            grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.FAILED_PRECONDITION: 400}


def inp(name="X", datatype="FP32", shape=(1, 30), values="fill"):
    """An input; 30 values unless `values` says otherwise (the model takes [-1, 30])."""
    return {"name": name, "datatype": datatype, "shape": list(shape), "values": [0.5] * 30 if values == "fill" else values}


# (case, request fields, the gRPC code both must answer with, words the shared message holds)
CASES = [
    ("no inputs", dict(inputs=[]), grpc.StatusCode.INVALID_ARGUMENT, "inputs is missing or empty"),
    ("an input without a name", dict(inputs=[inp(name="")]), grpc.StatusCode.INVALID_ARGUMENT,
     "inputs[0] has no name"),
    ("a datatype that does not exist", dict(inputs=[inp(datatype="FP8")]), grpc.StatusCode.INVALID_ARGUMENT,
     "'FP8' is not a KServe v2 datatype"),
    ("a datatype the model does not take", dict(inputs=[inp(datatype="FP64")]), grpc.StatusCode.INVALID_ARGUMENT,
     "datatype FP64 does not match the model's FP32"),
    ("a shape of the wrong rank", dict(inputs=[inp(shape=(30,))]), grpc.StatusCode.INVALID_ARGUMENT, "has rank 1"),
    ("a shape the model does not take", dict(inputs=[inp(shape=(1, 29))]), grpc.StatusCode.INVALID_ARGUMENT,
     "does not match the model's [-1,30]"),
    ("a negative dimension", dict(inputs=[inp(shape=(-1, 30))]), grpc.StatusCode.INVALID_ARGUMENT,
     "negative dimension"),
    ("a shape too large to count", dict(inputs=[inp(shape=(2 ** 62, 30))]), grpc.StatusCode.INVALID_ARGUMENT,
     "too large"),
    ("fewer values than the shape", dict(inputs=[inp(shape=(2, 30))]), grpc.StatusCode.INVALID_ARGUMENT,
     "has 120 bytes of data, shape [2,30] of FP32 needs 240"),
    ("no values at all", dict(inputs=[inp(values=None)]), grpc.StatusCode.INVALID_ARGUMENT, "'X': has no data"),
    ("values sent twice", dict(inputs=[inp()], twice=True), grpc.StatusCode.INVALID_ARGUMENT,
     "both in the message and as binary data"),
    ("an input the model does not have", dict(inputs=[inp(name="Y")]), grpc.StatusCode.INVALID_ARGUMENT,
     "'Y' is not an input of the model"),
    ("the same input twice", dict(inputs=[inp(), inp()]), grpc.StatusCode.INVALID_ARGUMENT, "given more than once"),
    ("a batch of zero rows", dict(inputs=[inp(shape=(0, 30), values=[])]), grpc.StatusCode.INVALID_ARGUMENT,
     "batch size is 0"),
    # Zero elements have nothing to send: without `data` / contents it is the same request as above.
    ("a batch of zero rows and no data", dict(inputs=[inp(shape=(0, 30), values=None)]),
     grpc.StatusCode.INVALID_ARGUMENT, "batch size is 0"),
    ("an output the model does not have", dict(inputs=[inp()], outputs=["nope"]), grpc.StatusCode.INVALID_ARGUMENT,
     "requested output 'nope' is not an output"),
    ("the same output twice", dict(inputs=[inp()], outputs=["probabilities", "probabilities"]),
     grpc.StatusCode.INVALID_ARGUMENT, "asked for more than once"),
    ("an output without a name", dict(inputs=[inp()], outputs=[""]), grpc.StatusCode.INVALID_ARGUMENT,
     "each requested output needs a name"),
    ("a request id over 256 bytes", dict(inputs=[inp()], id="i" * 300), grpc.StatusCode.INVALID_ARGUMENT,
     "request id is 300 bytes"),
    ("a model that does not exist", dict(inputs=[inp()], model="nope"), grpc.StatusCode.NOT_FOUND,
     "model 'nope' not found"),
    ("a version that does not exist", dict(inputs=[inp()], version="9"), grpc.StatusCode.NOT_FOUND,
     "has no version 9"),
    ("a version that is not a number", dict(inputs=[inp()], version="abc"), grpc.StatusCode.INVALID_ARGUMENT,
     "'abc' is not a positive integer"),
]


def over_rest(server, case):
    model, version = case.get("model", "breast_cancer"), case.get("version")
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    inputs, binary = [], b""
    for i in case["inputs"]:
        j = {"name": i["name"], "datatype": i["datatype"], "shape": i["shape"]}
        if i["values"] is not None:
            j["data"] = i["values"]
        if case.get("twice"):
            raw = b"\0" * (4 * len(i["values"]))
            j["parameters"] = {"binary_data_size": len(raw)}
            binary += raw
        inputs.append(j)
    body = {"inputs": inputs}
    if "id" in case:
        body["id"] = case["id"]
    if "outputs" in case:
        body["outputs"] = [{"name": o} for o in case["outputs"]]
    head = json.dumps(body).encode()
    headers = {"Inference-Header-Content-Length": str(len(head))} if binary else {}
    r = requests.post(server.http + path, data=head + binary, headers=headers, timeout=10)
    return r.status_code, r.json()["error"]


def over_grpc(stub, case):
    tensors, raw = [], []
    for i in case["inputs"]:
        field = "fp64_contents" if i["datatype"] == "FP64" else "fp32_contents"  # where the gRPC client puts them
        contents = pb.InferTensorContents(**{field: i["values"]}) if i["values"] else None
        tensors.append(pb.ModelInferRequest.InferInputTensor(name=i["name"], datatype=i["datatype"],
                                                             shape=i["shape"], contents=contents))
        if case.get("twice"):
            raw.append(b"\0" * (4 * len(i["values"])))
    request = pb.ModelInferRequest(
        model_name=case.get("model", "breast_cancer"), model_version=case.get("version", ""), id=case.get("id", ""),
        inputs=tensors, raw_input_contents=raw,
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=o) for o in case.get("outputs", [])])
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request, timeout=10)
    return e.value.code(), e.value.details()


@pytest.mark.parametrize("name,case,code,words", CASES, ids=[c[0] for c in CASES])
def test_the_same_mistake_gets_the_same_answer_over_rest_and_grpc(server, channel, name, case, code, words):
    status, rest_message = over_rest(server, case)
    grpc_code, grpc_message = over_grpc(pb_grpc.GRPCInferenceServiceStub(channel), case)
    assert grpc_code == code, grpc_message
    assert status == HTTP_FOR[code], rest_message
    assert words in grpc_message
    assert rest_message == grpc_message
