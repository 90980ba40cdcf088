"""The seed's request path with a real nginx (Debian's) in front of the server, routed like the Ingress:
REST /v1 and /v2 proxied over HTTP/1.1 keep-alive, gRPC through grpc_pass on an HTTP/2 listener.
(In the cluster the Ingress sends REST to Envoy: test_envoy_path.py runs that whole path.)"""
import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from inference.v1 import inference_pb2, inference_pb2_grpc
from proxies import Nginx

BODY_LIMIT = "1m"  # the Ingress' proxy-body-size for this test (the cluster uses the server's 64m)


@pytest.fixture(scope="module")
def nginx(server, tmp_path_factory):
    n = Nginx(tmp_path_factory.mktemp("nginx"), f"127.0.0.1:{server.http_port}", grpc_upstream=server.grpc_target,
              limit=BODY_LIMIT)
    yield n.url, n.grpc_target, n.rest_port
    n.stop()


def test_rest_v1_through_nginx_equals_direct(server, nginx, datasets):
    url, _, _ = nginx
    rows = [{"values": r} for r in datasets["breast_cancer"].data[:5].tolist()]
    body = {"model": "breast_cancer", "rows": rows, "request_id": "via-nginx"}
    via = requests.post(url + "/v1/infer", json=body)
    direct = requests.post(server.http + "/v1/infer", json=body)
    assert via.status_code == 200 and via.json() == direct.json()


def test_rest_errors_pass_through_nginx_unchanged(nginx):
    url, _, _ = nginx
    r = requests.post(url + "/v1/infer", json={"model": "nope", "rows": [{"values": [1]}]})
    assert r.status_code == 404 and r.json()["code"] == 5
    r = requests.post(url + "/v2/models/digits/infer", json={"inputs": []})
    assert r.status_code == 400 and "inputs" in r.json()["error"]


def test_v2_binary_tensors_through_nginx(nginx, reference, datasets):
    _, _, rest_port = nginx
    x = datasets["digits"].data[:16].astype(np.float32)
    client = thttp.InferenceServerClient(f"127.0.0.1:{rest_port}")
    assert client.is_server_ready()
    inp = thttp.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("digits", [inp])
    np.testing.assert_allclose(result.as_numpy("probabilities"), reference("digits", x)["probabilities"], atol=1e-5)


def test_grpc_through_nginx_grpc_pass(nginx, reference, datasets):
    _, grpc_target, _ = nginx
    x = datasets["diabetes"].data[:8].astype(np.float32)
    client = tgrpc.InferenceServerClient(grpc_target)
    inp = tgrpc.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    np.testing.assert_allclose(client.infer("diabetes", [inp]).as_numpy("variable"),
                               reference("diabetes", x)["variable"], atol=1e-5)
    with grpc.insecure_channel(grpc_target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        resp = stub.Infer(inference_pb2.InferRequest(model="diabetes", rows=[inference_pb2.Row(values=x[0])]))
        assert resp.predictions[0].scores[0] == pytest.approx(float(reference("diabetes", x[:1])["variable"][0][0]), abs=1e-4)
        with pytest.raises(grpc.RpcError) as e:
            stub.Infer(inference_pb2.InferRequest(model="nope", rows=[inference_pb2.Row(values=[1])]))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_nginx_enforces_the_body_limit(nginx):
    url, _, _ = nginx
    big = {"model": "breast_cancer", "rows": [{"values": [1.0] * 30}] * 8000}  # ~1.2 MB
    assert requests.post(url + "/v1/infer", json=big).status_code == 413
