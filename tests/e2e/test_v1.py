"""The seed's inference.v1 API over REST (port 8080's /v1) and gRPC, checked against onnxruntime."""
import grpc
import numpy as np
import pytest
import requests
from google.protobuf import json_format

from inference.v1 import inference_pb2, inference_pb2_grpc

TOL = 1e-5


@pytest.fixture(scope="module")
def stub(channel):
    return inference_pb2_grpc.InferenceServiceStub(channel)


def rows_json(x):
    return [{"values": [float(v) for v in row]} for row in x]


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_rest_predictions_match_onnxruntime(server, reference, datasets, model):
    x = datasets[model].data[:25].astype(np.float32)
    r = requests.post(server.http + "/v1/infer", json={"model": model, "rows": rows_json(x)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model and body["version"] == "1" and body["request_id"]
    ref = reference(model, x)
    scores_name = "variable" if model == "diabetes" else "probabilities"
    got = np.array([p["scores"] for p in body["predictions"]])
    np.testing.assert_allclose(got, ref[scores_name].reshape(len(x), -1), atol=TOL)
    for name, values in ref.items():
        got = np.array([p["outputs"][name]["values"] for p in body["predictions"]])
        np.testing.assert_allclose(got, values.reshape(len(x), -1), atol=TOL)
    if model != "diabetes":
        labels = [str(l) for l in datasets[model].target_names]
        assert [p["label"] for p in body["predictions"]] == [labels[i] for i in ref["label"]]


def test_named_features_equal_positional(server, datasets):
    ds = datasets["breast_cancer"]
    x = ds.data[:5].astype(np.float32)
    named = [{"features": {n: float(v) for n, v in zip(ds.feature_names, row)}} for row in x]
    a = requests.post(server.http + "/v1/infer", json={"model": "breast_cancer", "rows": named}).json()
    b = requests.post(server.http + "/v1/infer", json={"model": "breast_cancer", "rows": rows_json(x)}).json()
    assert [p["scores"] for p in a["predictions"]] == [p["scores"] for p in b["predictions"]]


def test_default_model_is_used_when_model_is_omitted(server, datasets):
    x = datasets["breast_cancer"].data[:1]
    r = requests.post(server.http + "/v1/infer", json={"rows": rows_json(x)})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "breast_cancer"


def test_grpc_predictions_match_onnxruntime_and_rest_json(server, stub, reference, datasets):
    x = datasets["digits"].data[:10].astype(np.float32)
    req = inference_pb2.InferRequest(model="digits", request_id="req-1",
                                     rows=[inference_pb2.Row(values=row) for row in x])
    resp = stub.Infer(req)
    assert resp.request_id == "req-1" and resp.model == "digits" and resp.version == "1"
    got = np.array([list(p.scores) for p in resp.predictions])
    np.testing.assert_allclose(got, reference("digits", x)["probabilities"], atol=TOL)
    # The REST answer is the proto3 JSON mapping of the gRPC answer (what Envoy's transcoder prints).
    rest = requests.post(server.http + "/v1/infer", json=json_format.MessageToDict(req, preserving_proto_field_name=True))
    assert rest.json() == json_format.MessageToDict(resp, preserving_proto_field_name=True,
                                                    **_print_defaults())


def _print_defaults():
    import inspect
    params = inspect.signature(json_format.MessageToDict).parameters
    if "always_print_fields_with_no_presence" in params:
        return {"always_print_fields_with_no_presence": True}
    return {"including_default_value_fields": True}


def test_list_models_over_rest_and_grpc(server, stub, datasets):
    rest = requests.get(server.http + "/v1/models").json()
    names = [m["name"] for m in rest["models"]]
    assert names == ["breast_cancer", "diabetes", "digits"]
    bc = rest["models"][0]
    assert bc["is_default"] and bc["labels"] == ["malignant", "benign"]
    assert bc["feature_names"] == list(datasets["breast_cancer"].feature_names)
    assert bc["versions"] == [{"version": "1", "state": "READY", "reason": ""}]
    grpc_models = stub.ListModels(inference_pb2.ListModelsRequest())
    assert [m.name for m in grpc_models.models] == names


BAD_REQUESTS = [
    # (body, http status, grpc code, words the message must contain)
    ({"model": "nope", "rows": [{"values": [1]}]}, 404, grpc.StatusCode.NOT_FOUND, "model 'nope' not found"),
    ({"model": "breast_cancer", "rows": []}, 400, grpc.StatusCode.INVALID_ARGUMENT, "rows is empty"),
    ({"model": "breast_cancer", "rows": [{"values": [1, 2]}]}, 400, grpc.StatusCode.INVALID_ARGUMENT,
     "rows[0].values has 2 values"),
    ({"model": "breast_cancer", "rows": [{}]}, 400, grpc.StatusCode.INVALID_ARGUMENT, "rows[0]: has neither"),
    ({"model": "breast_cancer", "rows": [{"values": [1], "features": {"a": 1}}]}, 400,
     grpc.StatusCode.INVALID_ARGUMENT, "not both"),
    ({"model": "breast_cancer", "rows": [{"features": {"mean radius": 1}}]}, 400, grpc.StatusCode.INVALID_ARGUMENT,
     "missing feature 'mean texture'"),
    ({"model": "breast_cancer", "rows": [{"features": {"bogus": 1}}]}, 400, grpc.StatusCode.INVALID_ARGUMENT,
     "unknown feature 'bogus'"),
    ({"model": "breast_cancer", "version": "x", "rows": [{"values": [1]}]}, 400, grpc.StatusCode.INVALID_ARGUMENT,
     "version 'x' is not a positive integer"),
    ({"model": "breast_cancer", "version": "7", "rows": [{"values": [1]}]}, 404, grpc.StatusCode.NOT_FOUND,
     "has no version 7"),
    ({"model": "../../etc", "rows": [{"values": [1]}]}, 404, grpc.StatusCode.NOT_FOUND, "not found"),
    ({"model": "breast_cancer", "rows": [{"values": [1.0] * 30}] * 1025}, 400, grpc.StatusCode.INVALID_ARGUMENT,
     "exceeds the model's max_batch_size 1024"),
]


@pytest.mark.parametrize("body,status,code,words", BAD_REQUESTS)
def test_bad_requests_fail_alike_on_rest_and_grpc(server, stub, body, status, code, words):
    r = requests.post(server.http + "/v1/infer", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["code"] == code.value[0] and words in err["message"], err
    with pytest.raises(grpc.RpcError) as e:
        stub.Infer(json_format.ParseDict(body, inference_pb2.InferRequest()))
    assert e.value.code() == code and words in e.value.details()


@pytest.mark.parametrize("raw,words", [
    ("{not json", "invalid JSON body"),
    ('{"rows": [{"values": ["a"]}]}', "invalid JSON body"),
    ('{"rowz": []}', "invalid JSON body"),
    ("[]", "invalid JSON body"),
    ("", "invalid JSON body"),
])
def test_malformed_json_is_400_with_google_rpc_status(server, raw, words):
    r = requests.post(server.http + "/v1/infer", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 3 and words in r.json()["message"]


def test_unknown_v1_paths_are_404_and_wrong_methods_405(server):
    assert requests.get(server.http + "/v1/infer").status_code == 405
    assert requests.post(server.http + "/v1/nothing", json={}).status_code == 404
    assert requests.post(server.http + "/v1/models", json={}).status_code == 405
