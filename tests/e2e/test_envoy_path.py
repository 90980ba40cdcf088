"""The seed's whole request path, every hop a real process on loopback:
client -> nginx (routed like the Ingress) -> Envoy v1.40 running deploy/k8s/base/inference/envoy.yaml
(grpc_json_transcoder for /v1, passthrough for /v2) -> two inference-server processes ("pods").

Only addresses, ports and the descriptor path differ from the deployed Envoy config (tests/e2e/proxies.py);
the clusters stay DNS clusters, resolving `localhost` where the cluster resolves the headless Service."""
import json
import os
import re
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from conftest import MODELS, Server, wait_for
from inference.v1 import inference_pb2, inference_pb2_grpc
from proxies import Envoy, Nginx


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("envoy-repo") / "models"
    shutil.copytree(MODELS, path)
    return path


class Path:
    """Two servers behind one Envoy behind one nginx; Envoy speaks TLS to the servers as deployed."""

    def __init__(self, tmp, repo, pki, leaving_args=(), args=()):
        """`args`: extra flags for both servers; `leaving_args`: for the second server, the one the lifecycle tests
        stop."""
        self.servers = [Server(repo, [*args, *extra], tmp_path=tmp, tls=pki).wait_ready()
                        for extra in [(), leaving_args]]
        # The tests' own requests to a server verify its certificate with the test CA.
        os.environ["REQUESTS_CA_BUNDLE"] = str(pki["ca"])
        self.envoy = Envoy(tmp, self.servers)
        self.envoy.wait_all_healthy(4)
        self.nginx = Nginx(tmp, self.envoy.target)
        self.url = self.nginx.url

    def stop(self):
        self.nginx.stop()
        self.envoy.stop()
        return [s.stop() for s in self.servers]


@pytest.fixture(scope="module")
def path(tmp_path_factory, repo, pki):
    p = Path(tmp_path_factory.mktemp("envoy-path"), repo, pki)
    yield p
    assert p.stop() == [0, 0]


def requests_served(server, protocol, code=None):
    """inference_requests_total{protocol=...} summed over models and codes (or for one code), read from the
    server's /metrics."""
    text = server.metrics_text()
    return sum(float(m.group(2)) for m in re.finditer(
        r'^inference_requests_total\{([^}]*protocol="' + protocol + r'"[^}]*)\} (\S+)$', text, re.M)
        if code is None or f'code="{code}"' in m.group(1))


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_v1_through_ingress_and_envoy_is_the_servers_own_v1(path, datasets, reference, model):
    x = datasets[model].data[:7].astype(np.float32)
    body = {"model": model, "rows": [{"values": r} for r in x.tolist()], "request_id": f"envoy-{model}"}
    via = requests.post(path.url + "/v1/infer", json=body)
    direct = requests.post(path.servers[0].http + "/v1/infer", json=body)
    assert via.status_code == 200, via.text
    assert via.headers["content-type"].startswith("application/json")
    assert via.json() == direct.json()
    ref = reference(model, x)
    for row, pred in enumerate(via.json()["predictions"]):
        name = "variable" if model == "diabetes" else "probabilities"
        np.testing.assert_allclose(pred["outputs"][name]["values"], ref[name][row], atol=1e-5)


def test_list_models_is_transcoded(path):
    via = requests.get(path.url + "/v1/models")
    assert via.status_code == 200
    assert via.json() == requests.get(path.servers[0].http + "/v1/models").json()
    assert {m["name"] for m in via.json()["models"]} == {"breast_cancer", "digits", "diabetes"}


@pytest.mark.parametrize("body,status,code", [
    ({"model": "nope", "rows": [{"values": [1]}]}, 404, 5),
    ({"model": "breast_cancer", "rows": [{"values": [1, 2]}]}, 400, 3),
    ({"model": "breast_cancer", "rows": []}, 400, 3),
    ({"model": "breast_cancer", "rows": [{"values": [1.0] * 30}], "version": "9"}, 404, 5),
])
def test_errors_keep_status_and_message_through_the_transcoder(path, body, status, code):
    """convert_grpc_status turns the server's gRPC status into the same JSON the server's own /v1 sends."""
    via = requests.post(path.url + "/v1/infer", json=body)
    direct = requests.post(path.servers[0].http + "/v1/infer", json=body)
    assert (via.status_code, via.json()["code"]) == (status, code)
    assert via.json() == direct.json()
    assert via.json()["message"]


@pytest.mark.parametrize("method,target,data,status,words", [
    ("POST", "/v1/bogus", b"{}", 404, "Could not resolve /v1/bogus"),
    ("POST", "/v1/infer?colour=blue", b'{"model": "digits"}', 400, '"colour"'),
    ("POST", "/v1/infer", b"{not json", 400, "Expected"),
])
def test_envoy_rejects_requests_outside_the_descriptor(path, method, target, data, status, words):
    """reject_unknown_method / reject_unknown_query_parameters: Envoy answers these itself (plain text);
    the server runs none of them."""
    def counts():
        """(all, INVALID_ARGUMENT) grpc-v1 requests, once two reads 0.2 s apart agree: a request is counted just
        after its reply, and Envoy answers the client before a broken upstream call reaches the server."""
        now = (-1, -1)
        while True:
            seen = (sum(requests_served(srv, "grpc-v1") for srv in path.servers),
                    sum(requests_served(srv, "grpc-v1", "INVALID_ARGUMENT") for srv in path.servers))
            if seen == now:
                return now
            now = seen
            time.sleep(0.2)

    before, invalid_before = counts()
    r = requests.request(method, path.url + target, data=data, headers={"content-type": "application/json"})
    assert r.status_code == status and words in r.text, r.text
    # Envoy may already have opened the upstream call when it finds the JSON malformed: the server then
    # sees a broken message, which it refuses (INVALID_ARGUMENT, counted) and never runs.
    after, invalid_after = counts()
    extra = after - before
    assert extra == invalid_after - invalid_before
    assert extra <= (1 if words == "Expected" else 0)


def test_unknown_json_fields_are_dropped_by_envoy_but_rejected_by_the_server(path):
    """A documented difference (docs/api.md): Envoy's transcoder has no option to reject unknown body
    fields, so a misspelt field is dropped on its way; the server's own /v1 names it."""
    body = {"model": "digits", "rowz": [{"values": [0.0] * 64}]}
    via = requests.post(path.url + "/v1/infer", json=body)
    assert via.status_code == 400 and via.json()["message"] == "rows is empty: send at least one row"
    direct = requests.post(path.servers[0].http + "/v1/infer", json=body)
    assert direct.status_code == 400 and "rowz" in direct.json()["message"]


def test_v2_rest_passes_through_envoy_untranscoded(path, datasets, reference):
    x = datasets["digits"].data[:16].astype(np.float32)
    client = thttp.InferenceServerClient(f"127.0.0.1:{path.nginx.rest_port}")
    assert client.is_server_ready() and client.is_model_ready("digits")
    inp = thttp.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    result = client.infer("digits", [inp])
    np.testing.assert_allclose(result.as_numpy("probabilities"), reference("digits", x)["probabilities"], atol=1e-5)
    bad = requests.post(path.url + "/v2/models/digits/infer", json={"inputs": []})
    assert bad.status_code == 400 and "inputs" in bad.json()["error"]


def test_v2_server_routes_reach_the_server_through_nginx_and_envoy(path):
    """`GET /v2` (server metadata) fell into the transcoder when the route matched `/v2/` only."""
    meta = requests.get(path.url + "/v2")
    assert meta.status_code == 200 and meta.json()["name"], meta.text
    assert requests.get(path.url + "/v2/health/ready").status_code == 200
    models = requests.get(path.url + "/v2/models")
    assert models.status_code == 200 and {m["name"] for m in models.json()} == {"breast_cancer", "diabetes", "digits"}


def test_grpc_clients_can_use_envoy_directly(path, datasets, reference):
    x = datasets["diabetes"].data[:8].astype(np.float32)
    client = tgrpc.InferenceServerClient(path.envoy.target)
    inp = tgrpc.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    np.testing.assert_allclose(client.infer("diabetes", [inp]).as_numpy("variable"),
                               reference("diabetes", x)["variable"], atol=1e-5)
    with grpc.insecure_channel(path.envoy.target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        assert stub.Infer(inference_pb2.InferRequest(model="diabetes", rows=[inference_pb2.Row(values=x[0])])).predictions
        with pytest.raises(grpc.RpcError) as e:
            stub.Infer(inference_pb2.InferRequest(model="diabetes", rows=[inference_pb2.Row(values=[1])]))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "expects 10" in e.value.details()


def test_a_body_larger_than_envoys_connection_buffer_is_transcoded(path, datasets, reference):
    """per_connection_buffer_limit_bytes is 1 MiB; the transcoder's max_request_body_size (64 MiB) governs."""
    x = datasets["digits"].data[:1024].astype(np.float32) + np.float32(0.123456789)
    body = {"model": "digits", "rows": [{"values": r} for r in x.tolist()]}
    assert len(json.dumps(body)) > 1 << 20
    r = requests.post(path.url + "/v1/infer", json=body)
    assert r.status_code == 200, r.text[:300]
    got = np.array([p["outputs"]["probabilities"]["values"] for p in r.json()["predictions"]])
    np.testing.assert_allclose(got, reference("digits", x)["probabilities"], atol=1e-5)


def test_each_request_is_balanced_across_pods(path):
    """One client keep-alive connection, yet both servers serve: Envoy balances per request over its
    HTTP/2 upstream connections (a ClusterIP Service would pin the connection to one pod)."""
    for protocol, send in [
        ("grpc-v1", lambda s: s.post(path.url + "/v1/infer", json={"model": "breast_cancer",
                                                                    "rows": [{"values": [1.0] * 30}]})),
        ("http-v2", lambda s: s.post(path.url + "/v2/models/diabetes/infer", json={
            "inputs": [{"name": "X", "shape": [1, 10], "datatype": "FP32", "data": [0.01] * 10}]})),
    ]:
        before = [requests_served(s, protocol) for s in path.servers]
        with requests.Session() as session:
            for _ in range(40):
                assert send(session).status_code == 200
        served = [requests_served(s, protocol) - b for s, b in zip(path.servers, before)]
        assert sum(served) == 40 and min(served) >= 5, (protocol, served)


def test_envoy_exposes_upstream_stats_for_prometheus(path):
    requests.post(path.url + "/v1/infer", json={"model": "breast_cancer", "rows": [{"values": [1.0] * 30}]})
    text = requests.get(path.envoy.admin + "/stats/prometheus").text
    for cluster in ["inference_server_grpc", "inference_server_http"]:
        assert re.search(r'^envoy_cluster_upstream_rq_total\{envoy_cluster_name="' + cluster + r'"\} [1-9]', text, re.M)
        assert re.search(r'^envoy_cluster_health_check_success\{envoy_cluster_name="' + cluster + r'"\} [1-9]', text, re.M)
        assert re.search(r'^envoy_cluster_membership_healthy\{envoy_cluster_name="' + cluster + r'"\} 2$', text, re.M)


class Load:
    """Clients sending v1 (transcoded) and v2 (proxied) requests through nginx until stopped; every answer kept."""

    def __init__(self, url, clients=4):
        self.url, self.results, self.done = url, [], threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i % 2,)) for i in range(clients)]
        for t in self.threads:
            t.start()

    def run(self, v2):
        with requests.Session() as s:
            while not self.done.is_set():
                try:
                    if v2:
                        r = s.post(self.url + "/v2/models/diabetes/infer", json={
                            "inputs": [{"name": "X", "shape": [1, 10], "datatype": "FP32", "data": [0.01] * 10}]})
                        ok = r.status_code == 200 and len(r.json()["outputs"][0]["data"]) == 1
                    else:
                        r = s.post(self.url + "/v1/infer", json={"model": "breast_cancer",
                                                                 "rows": [{"values": [1.0] * 30}]})
                        ok = r.status_code == 200 and len(r.json()["predictions"]) == 1
                    self.results.append(ok or f"{r.status_code} {r.text[:200]}")
                except requests.RequestException as e:
                    self.results.append(repr(e))

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(timeout=30)
        return [r for r in self.results if r is not True]


def test_a_pod_stopping_abruptly_loses_no_request(tmp_path, repo, pki):
    """The harsh case: a server gets SIGTERM while Envoy still sends to it (no preStop delay, no readiness
    lead time). Its listeners close at once; Envoy retries refused connections on the other pod
    (retry_host_predicate previous_hosts) and in-flight requests finish. Then health checks drop it."""
    p = Path(tmp_path, repo, pki)
    try:
        load = Load(p.url)
        time.sleep(1.5)
        leaving = p.servers[1]
        assert leaving.stop() == 0
        time.sleep(1.5)
        failures = load.stop()
        assert len(load.results) > 100 and failures == [], failures[:5]
        wait_for(lambda: not any(h for (_, port), h in p.envoy.host_health().items()
                                 if port in (leaving.grpc_port, leaving.http_port)),
                 30, "Envoy to mark the stopped server unhealthy")
    finally:
        p.stop()


def test_readiness_off_takes_a_pod_out_before_it_stops_serving(tmp_path, repo, pki):
    """The normal case, like the pod's preStop: after SIGTERM the server keeps serving for
    --shutdown-delay-s with gRPC health NOT_SERVING, and Envoy's active gRPC health check removes it while
    it still serves; under load, nothing fails."""
    p = Path(tmp_path, repo, pki, leaving_args=("--shutdown-delay-s", "14"))
    try:
        load = Load(p.url, clients=2)
        leaving = p.servers[1]
        leaving.proc.send_signal(15)
        start = time.time()
        wait_for(lambda: p.envoy.host_health()[("inference_server_grpc", leaving.grpc_port)] is False,
                 13, "Envoy's gRPC health check to see NOT_SERVING during the shutdown delay")
        assert leaving.proc.poll() is None and time.time() - start < 14
        assert leaving.stop() == 0
        failures = load.stop()
        assert len(load.results) > 50 and failures == [], failures[:5]
    finally:
        p.stop()


ADMIN_TOKEN = "admin-token-0123456789abcdef"
CLIENT_TOKEN = "client-token-0123456789abcdef"


@pytest.fixture(scope="module")
def secured_path(tmp_path_factory, repo, pki):
    """Both servers with bearer tokens and model control by request allowed (explicit), behind Envoy and nginx."""
    tmp = tmp_path_factory.mktemp("secured-path")
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"name": "admin", "token": ADMIN_TOKEN, "scopes": ["model-control", "metadata"]},
        {"name": "client", "token": CLIENT_TOKEN, "scopes": ["infer", "metadata"]}]}))
    p = Path(tmp, repo, pki, args=("--auth-tokens-file", str(tokens), "--model-control-mode", "explicit",
                              "--load-model", "*"))
    yield p
    assert p.stop() == [0, 0]


def test_model_control_is_not_reachable_through_the_ingress(secured_path):
    """Even a server that allows repository load/unload, asked with a token that may, is out of reach from
    outside: Envoy answers every /v2/repository path and the gRPC repository methods (index, load, unload) itself."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for target in ["/v2/repository/models/digits/unload", "/v2/repository/models/digits/load",
                   "/v2/repository/index", "/v2/repository"]:
        r = requests.post(secured_path.url + target, headers=admin)
        assert r.status_code == 404 and "not served through the ingress" in r.text, (target, r.text)
    client = tgrpc.InferenceServerClient(secured_path.envoy.target)
    from tritonclient.utils import InferenceServerException
    for call in (lambda h: client.unload_model("digits", headers=h), lambda h: client.load_model("digits", headers=h),
                 lambda h: client.get_model_repository_index(headers=h)):
        with pytest.raises(InferenceServerException) as e:
            call({"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert "UNIMPLEMENTED" in str(e.value.status()), e.value
    for s in secured_path.servers:
        assert requests.get(s.http + "/v2/models/digits/ready").status_code == 200, "still served"
        assert not any(l.get("msg") == "model control" for l in s.log_lines()), "no call reached a server"
    # The same request straight to a server is served: the refusal above was Envoy's.
    direct = secured_path.servers[0]
    assert requests.post(direct.http + "/v2/repository/models/digits/load", headers=admin).status_code == 200


def test_the_bearer_token_reaches_the_server_through_the_transcoder(secured_path):
    """Envoy's grpc_json_transcoder passes the Authorization header on as gRPC metadata: /v1 through the ingress is
    refused without a token (UNAUTHENTICATED as 401) and served with one; /v2 REST and gRPC via Envoy alike."""
    body = {"model": "digits", "rows": [{"values": [0.0] * 64}]}
    r = requests.post(secured_path.url + "/v1/infer", json=body)
    assert r.status_code == 401 and r.json()["code"] == 16 and "bearer token" in r.json()["message"], r.text
    r = requests.post(secured_path.url + "/v1/infer", json=body, headers={"Authorization": "Bearer wrong-token-000000"})
    assert r.status_code == 401 and "not valid" in r.json()["message"], r.text
    r = requests.post(secured_path.url + "/v1/infer", json=body, headers={"Authorization": f"Bearer {CLIENT_TOKEN}"})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1, r.text
    r = requests.get(secured_path.url + "/v2/models/digits")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), r.text
    assert requests.get(secured_path.url + "/v2/models/digits",
                        headers={"Authorization": f"Bearer {CLIENT_TOKEN}"}).status_code == 200
    client = tgrpc.InferenceServerClient(secured_path.envoy.target)
    assert client.get_model_metadata("digits", headers={"authorization": f"Bearer {CLIENT_TOKEN}"}).name == "digits"
    lines = [l for s in secured_path.servers for l in s.log_lines()]
    assert any(l.get("msg") == "request" and l.get("protocol") == "grpc-v1" and l.get("principal") == "client"
               for l in lines)
