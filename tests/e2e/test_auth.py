"""The one authorization seam (docs/security.md): every HTTP route and gRPC method the server exposes, taken from
its own tables (`--list-endpoints`, which prints the route table and the methods of the gRPC services' protobuf
descriptors), is refused without a token unless its category is open; each token gets exactly its scopes; tokens
expire, may be given as SHA-256 digests, are rotated by replacing the file as Kubernetes does, and never reach a
log line. Triton's restricted-API flags map onto the same seam."""
import hashlib
import json
import os
import shutil
import subprocess
import time

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from certs import SecretVolume
from conftest import BINARY, MODELS, Server, identity_model, metric_sum, wait_for

CLIENT = "client-token-0123456789abcdef"
STATS = "stats-token-0123456789abcdef"  # given to the server as its digest only
ADMIN = "admin-token-0123456789abcdef"
ALL = "all-token-0123456789abcdef"
OLD = "old-token-0123456789abcdef"
SECRETS = [CLIENT, STATS, ADMIN, ALL, OLD]


def tokens_file(path, entries=None):
    entries = entries or [
        {"name": "client", "token": CLIENT, "scopes": ["infer", "metadata"]},
        {"name": "stats", "sha256": hashlib.sha256(STATS.encode()).hexdigest(), "scopes": ["statistics"]},
        {"name": "admin", "token": ADMIN, "scopes": ["model-control", "metadata"]},
        {"name": "all", "token": ALL,
         "scopes": ["infer", "metadata", "statistics", "model-control", "health", "metrics"]},
        {"name": "old", "token": OLD, "scopes": ["infer"], "expires": "2001-01-01T00:00:00Z"},
    ]
    path.write_text(json.dumps({"tokens": entries}))
    return path


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    repo = tmp / "models"
    shutil.copytree(MODELS, repo)
    identity_model(repo, "scratch", [None, 2], config="max_batch_size: 4\n")  # for load/unload probes
    s = Server(repo, ["--auth-tokens-file", str(tokens_file(tmp / "tokens.json")), "--model-control-mode",
                      "explicit", "--load-model", "*"], tmp_path=tmp).wait_ready()
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


@pytest.fixture(scope="module")
def endpoints():
    out = subprocess.run([str(BINARY), "--list-endpoints", "true"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return json.loads(out)


def http_path(pattern):
    return pattern.replace("{model}", "scratch").replace("{version}", "1")


def call_http(server, route, headers=None):
    return requests.request(route["method"], server.http + http_path(route["pattern"]), headers=headers or {},
                            data=b"{}" if route["method"] == "POST" else None, timeout=30)


def call_grpc(server, method, metadata=()):
    """Calls `method` with an empty message (every field default): what matters is who answers, not how. A
    streaming method (health Watch) is judged by its first answer."""
    with grpc.insecure_channel(server.grpc_target) as ch:
        try:
            if method.endswith("/Watch"):
                next(iter(ch.unary_stream(method)(b"", metadata=list(metadata), timeout=30)))
            else:
                ch.unary_unary(method)(b"", metadata=list(metadata), timeout=30)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()


def test_the_tables_name_every_endpoint_and_every_one_has_a_category(endpoints):
    http = {(r["method"], r["pattern"]) for r in endpoints["http"]}
    # A few the docs promise, to catch an empty table; the rest comes from the server itself.
    assert {("POST", "/v2/models/{model}/infer"), ("POST", "/v1/infer"), ("GET", "/healthz"),
            ("POST", "/v2/repository/models/{model}/unload")} <= http
    assert all(r["category"] for r in endpoints["http"]) and all(m["category"] for m in endpoints["grpc"]), endpoints
    assert len(endpoints["grpc"]) == 15
    assert {"method": "/grpc.health.v1.Health/Watch", "category": "health"} in endpoints["grpc"]


def test_reflection_lists_no_service_method_missing_from_the_table(server, endpoints):
    """The services a live server registers, as its reflection reports them (on a server without authorization,
    where reflection is on): each method of each has a category, gRPC's reflection service aside."""
    from google.protobuf import descriptor_pool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.grpc_target) as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        services = set(db.get_services())
        assert services == {"inference.v1.InferenceService", "inference.GRPCInferenceService", "grpc.health.v1.Health",
                            "grpc.reflection.v1alpha.ServerReflection"}
        pool = descriptor_pool.DescriptorPool(db)
        listed = {m["method"] for m in endpoints["grpc"]}
        for name in services - {"grpc.reflection.v1alpha.ServerReflection"}:
            for method in pool.FindServiceByName(name).methods:
                assert f"/{name}/{method.name}" in listed


def test_reflection_is_off_with_authorization_and_cannot_be_forced_on(secured, tmp_path):
    """gRPC's reflection service is gRPC's own code, which the authorizer cannot guard: with authorization on, no
    reflection is served, and asking for it stops the server with the reason."""
    code, _ = call_grpc(secured, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert code == grpc.StatusCode.UNIMPLEMENTED
    r = subprocess.run([str(BINARY), "--model-repository", str(MODELS), "--grpc-port", "0", "--http-port", "0",
                        "--metrics-port", "0", "--auth-tokens-file", str(tokens_file(tmp_path / "t.json")),
                        "--grpc-reflection", "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot pass the authorizer" in r.stdout + r.stderr


def test_every_http_route_is_refused_without_a_token_unless_open(secured, endpoints):
    for route in endpoints["http"]:
        r = call_http(secured, route)
        if route["category"] == "health":
            assert r.status_code != 401, route
            continue
        assert r.status_code == 401, (route, r.status_code, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer realm="), route
        body = r.json()
        message = body["error"] if route["pattern"].startswith("/v2") else body["message"]
        assert "bearer token" in message, (route, body)


def test_every_grpc_method_is_refused_without_a_token_unless_open(secured, endpoints):
    for m in endpoints["grpc"]:
        code, details = call_grpc(secured, m["method"])
        if m["category"] == "health":
            assert code != grpc.StatusCode.UNAUTHENTICATED, m
        else:
            assert code == grpc.StatusCode.UNAUTHENTICATED, (m, code, details)


def test_a_token_with_every_scope_passes_every_endpoint(secured, endpoints):
    for route in endpoints["http"]:
        r = call_http(secured, route, bearer(ALL))
        assert r.status_code not in (401, 403), (route, r.status_code, r.text)
    for m in endpoints["grpc"]:
        code, details = call_grpc(secured, m["method"], [("authorization", f"Bearer {ALL}")])
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), (m, details)


# (category, a REST request of it) and what each token gets.
V2_INPUT = {"inputs": [{"name": "X", "shape": [1, 30], "datatype": "FP32", "data": [0.5] * 30}]}
PROBES = {
    "inference": ("POST", "/v2/models/breast_cancer/infer", V2_INPUT),
    "metadata": ("GET", "/v2/models/breast_cancer", None),
    "model-config": ("GET", "/v2/models/breast_cancer/config", None),
    "statistics": ("GET", "/v2/models/breast_cancer/stats", None),
    "repository-index": ("POST", "/v2/repository/index", None),
    "model-control": ("POST", "/v2/repository/models/scratch/load", None),
}
ALLOWED = {
    "client": {"inference", "metadata", "model-config", "repository-index"},
    "stats": {"statistics"},
    "admin": {"metadata", "model-config", "repository-index", "model-control"},
}


@pytest.mark.parametrize("name,token", [("client", CLIENT), ("stats", STATS), ("admin", ADMIN)])
def test_each_token_gets_exactly_its_scopes(secured, name, token):
    for category, (method, path, body) in PROBES.items():
        r = requests.request(method, secured.http + path, json=body, headers=bearer(token), timeout=30)
        if category in ALLOWED[name]:
            assert r.status_code == 200, (name, category, r.text)
        else:
            assert r.status_code == 403, (name, category, r.text)
            assert f"the token '{name}' lacks the scope" in r.json()["error"]
            assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_v1_and_grpc_inference_take_the_same_tokens(secured):
    row = {"model": "breast_cancer", "rows": [{"values": [0.5] * 30}]}
    assert requests.post(secured.http + "/v1/infer", json=row).status_code == 401
    r = requests.post(secured.http + "/v1/infer", json=row, headers=bearer(STATS))
    assert r.status_code == 403 and r.json()["code"] == 7, r.text  # PERMISSION_DENIED as google.rpc.Status
    assert requests.post(secured.http + "/v1/infer", json=row, headers=bearer(CLIENT)).status_code == 200

    x = tgrpc.InferInput("X", [1, 30], "FP32")
    x.set_data_from_numpy(np.full((1, 30), 0.5, np.float32))
    client = tgrpc.InferenceServerClient(secured.grpc_target)
    with pytest.raises(InferenceServerException) as e:
        client.infer("breast_cancer", [x])
    assert "UNAUTHENTICATED" in str(e.value.status())
    out = client.infer("breast_cancer", [x], headers={"authorization": f"Bearer {CLIENT}"})
    assert out.as_numpy("probabilities").shape == (1, 2)
    rest = thttp.InferenceServerClient(secured.http.removeprefix("http://"))
    xh = thttp.InferInput("X", [1, 30], "FP32")
    xh.set_data_from_numpy(np.full((1, 30), 0.5, np.float32))
    assert rest.infer("breast_cancer", [xh], headers=bearer(CLIENT)).as_numpy("probabilities").shape == (1, 2)
    with pytest.raises(InferenceServerException):
        rest.infer("breast_cancer", [xh], headers=bearer(STATS))


def test_expired_malformed_and_unknown_tokens_are_401_and_counted(secured):
    before = secured.metrics_text()
    cases = {"expired": bearer(OLD), "malformed": {"Authorization": f"Token {CLIENT}"},
             "invalid": bearer("x" * 40), "missing": {}}
    for reason, headers in cases.items():
        r = requests.get(secured.http + "/v2/models/breast_cancer", headers=headers)
        assert r.status_code == 401, (reason, r.text)
    assert "expired at 2001-01-01T00:00:00Z" in requests.get(secured.http + "/v2/models/breast_cancer",
                                                             headers=bearer(OLD)).json()["error"]
    after = secured.metrics_text()
    for reason in cases:
        assert metric_sum(after, "inference_auth_failures_total", transport="http", reason=reason) > \
            metric_sum(before, "inference_auth_failures_total", transport="http", reason=reason), reason


def test_refusals_are_logged_with_the_token_name_never_the_token(secured):
    requests.get(secured.http + "/v2/models/breast_cancer/stats", headers=bearer(CLIENT))
    requests.post(secured.http + "/v2/models/breast_cancer/infer", json=V2_INPUT, headers=bearer(CLIENT))
    lines = secured.wait_for_log(lambda l: l.get("msg") == "request" and l.get("principal") == "client")
    refused = [l for l in lines if l.get("msg") == "request refused by authorization"]
    assert any(l["principal"] == "client" and l["reason"] == "scope" and l["category"] == "statistics" and
               l["operation"] == "GET /v2/models/{model}/stats" and l["peer"].startswith("127.0.0.1:")
               for l in refused), refused[-5:]
    assert any(l.get("msg") == "request" and l.get("principal") == "client" for l in lines)
    text = secured.log_text()
    for secret in SECRETS:
        assert secret not in text


def test_tokens_are_rotated_by_swapping_the_secret_as_kubernetes_does(tmp_path, make_server):
    """A Kubernetes Secret volume: tokens.json -> ..data/tokens.json, ..data -> a timestamped directory, and an
    update swaps the ..data link. The new token works within seconds, the old one stops, and a broken update keeps
    the tokens in force."""
    secret = SecretVolume(tmp_path / "secret", ["tokens.json"])

    def publish(entries=None, raw=None):
        secret.publish({"tokens.json": raw.encode() if raw else json.dumps({"tokens": entries}).encode()})

    publish([{"name": "first", "token": CLIENT, "scopes": ["metadata"]}])
    s = make_server(MODELS, "--auth-tokens-file", str(secret / "tokens.json"))
    url = s.http + "/v2/models/digits"
    assert requests.get(url, headers=bearer(CLIENT)).status_code == 200
    publish([{"name": "second", "token": ADMIN, "scopes": ["metadata"]}])
    wait_for(lambda: requests.get(url, headers=bearer(ADMIN)).status_code == 200, timeout=10, what="the new token")
    assert requests.get(url, headers=bearer(CLIENT)).status_code == 401, "the old token is gone"
    publish(raw='{"tokens": [')
    wait_for(lambda: metric_sum(s.metrics_text(), "inference_secret_reloads_total", secret="tokens",
                                result="error") == 1, timeout=10, what="the broken file to be read")
    assert requests.get(url, headers=bearer(ADMIN)).status_code == 200, "a broken update keeps the tokens in force"
    assert metric_sum(s.metrics_text(), "inference_secret_reloads_total", secret="tokens", result="ok") == 1
    assert any(l.get("msg") == "tokens file not reloaded: the previous tokens stay in force" for l in s.log_lines())


def test_health_stays_open_by_default_and_can_be_closed(tmp_path, make_server):
    tokens = tokens_file(tmp_path / "tokens.json")
    s = make_server(MODELS, "--auth-tokens-file", str(tokens), "--auth-open", "none", ready=False)
    def ready():
        assert s.proc.poll() is None, s.log_text()
        try:
            return requests.get(s.http + "/readyz", headers=bearer(ALL), timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(ready, what="readiness with a token")
    for path in ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/v2/models/digits/ready"]:
        assert requests.get(s.http + path).status_code == 401, path
        assert requests.get(s.http + path, headers=bearer(CLIENT)).status_code == 403, path
        assert requests.get(s.http + path, headers=bearer(ALL)).status_code == 200, path
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with grpc.insecure_channel(s.grpc_target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for call in [lambda md: health.Check(health_pb2.HealthCheckRequest(service="digits"), metadata=md, timeout=10),
                     lambda md: next(health.Watch(health_pb2.HealthCheckRequest(service="digits"), metadata=md,
                                                  timeout=10))]:
            with pytest.raises(grpc.RpcError) as e:
                call([])
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert call([("authorization", f"Bearer {ALL}")]).status == health_pb2.HealthCheckResponse.SERVING
    r = requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics")
    assert r.status_code == 401, "metrics closed too"
    r = requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", auth=("prometheus", ALL))
    assert r.status_code == 200 and "inference_auth_failures_total" in r.text
    assert requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", auth=("prometheus", CLIENT)).status_code == 401


def test_tritons_restricted_api_flags_guard_their_categories(tmp_path, make_server):
    s = make_server(MODELS, "--http-restricted-api", "model-repository:admin-key=admin-value",
                    "--grpc-restricted-protocol", "inference,model-repository:infer-key=infer-value",
                    "--model-control-mode", "explicit", "--load-model", "*")
    rest = thttp.InferenceServerClient(s.http.removeprefix("http://"))
    with pytest.raises(InferenceServerException) as e:
        rest.get_model_repository_index()
    assert "This API is restricted, expecting header 'admin-key'" in str(e.value)
    assert len(rest.get_model_repository_index(headers={"admin-key": "admin-value"})) == 3
    assert rest.is_model_ready("digits"), "health is not restricted"

    client = tgrpc.InferenceServerClient(s.grpc_target)
    x = tgrpc.InferInput("X", [1, 64], "FP32")
    x.set_data_from_numpy(np.zeros((1, 64), np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("digits", [x])
    assert "PERMISSION_DENIED" in str(e.value.status()) and "triton-grpc-protocol-infer-key" in str(e.value)
    out = client.infer("digits", [x], headers={"triton-grpc-protocol-infer-key": "infer-value"})
    assert out.as_numpy("probabilities").shape == (1, 10)
    client.unload_model("digits", headers={"triton-grpc-protocol-infer-key": "infer-value"})
    assert not client.is_model_ready("digits")


@pytest.mark.parametrize("args,words", [
    (["--auth-tokens-file", "/nonexistent/tokens.json"], "cannot read the tokens file"),
    (["--auth-open", "health,everything"], "unknown category 'everything'"),
    (["--http-restricted-api", "inference"], "must be <categories>:<key>=<value>"),
    (["--grpc-restricted-protocol", "bogus:a=b"], "unknown category 'bogus'"),
])
def test_bad_authorization_flags_stop_the_server_with_a_reason(args, words):
    r = subprocess.run([str(BINARY), "--model-repository", str(MODELS), "--grpc-port", "0", "--http-port", "0",
                        "--metrics-port", "0", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and words in (r.stdout + r.stderr), r.stdout + r.stderr


def test_the_readmes_security_examples_work_as_written(tmp_path, make_server):
    import re
    from conftest import ROOT

    section = (ROOT / "README.md").read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    (script,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    s = make_server(MODELS, "--auth-tokens-file", str(tokens_file(tmp_path / "tokens.json")))
    script = script.replace("localhost:8080", f"localhost:{s.http_port}").replace("localhost:50051",
                                                                                  f"localhost:{s.grpc_port}")
    env = dict(os.environ, TOKEN=CLIENT, PATH=f"{ROOT / '.deps' / 'bin'}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"name":"diabetes"' in out.stdout and '"name": "inference-server"' in out.stdout, out.stdout
