"""TLS and mutual TLS on the HTTP port (OpenSSL through libevent's bufferevent_openssl), with certificates made
at test time: curl, requests and tritonclient over HTTPS; the refusals (plaintext to the TLS port, a wrong CA, no,
an expired or a foreign client certificate, a handshake that never completes, garbage, TLS below 1.2) each
closing that connection only, counted; rotation by swapping the Secret's files under load with no failed
request; tokens over TLS."""
import json
import socket
import ssl
import subprocess
import time

import numpy as np
import pytest
import requests
import tritonclient.http as thttp

from certs import rotation_under_load
from conftest import MODELS, metric_sum, wait_for


def https_args(pki, mutual=False):
    crt, key = pki["server"]
    args = ["--http-tls-cert", str(crt), "--http-tls-key", str(key), "--tls-handshake-timeout-s", "2"]
    return args + (["--http-tls-client-ca", str(pki["ca"])] if mutual else [])


def url(s, path="/v2/models/digits"):
    return f"https://127.0.0.1:{s.http_port}{path}"


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=30)


def rejected(s, reason):
    return metric_sum(s.metrics_text(), "inference_transport_rejected_total", protocol="http", reason=reason)


def test_https_serves_curl_requests_and_tritonclient(pki, make_server):
    s = make_server(MODELS, *https_args(pki), ready=False)
    wait_for(lambda: s.proc.poll() is None and "server started" in s.log_text(), what="the server")
    out = curl("--cacert", str(pki["ca"]), url(s))
    assert out.returncode == 0 and json.loads(out.stdout)["name"] == "digits", out.stderr
    assert requests.get(url(s, "/readyz"), verify=str(pki["ca"])).status_code == 200
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    client = thttp.InferenceServerClient(f"127.0.0.1:{s.http_port}", ssl=True, ssl_context_factory=lambda: ctx)
    x = thttp.InferInput("X", [3, 64], "FP32")
    x.set_data_from_numpy(np.zeros((3, 64), np.float32), binary_data=True)
    assert client.infer("digits", [x]).as_numpy("probabilities").shape == (3, 10)
    # Keep-alive: several requests on one TLS connection.
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(url(s), verify=str(pki["ca"])).status_code == 200
    started = next(l for l in s.log_lines() if l.get("msg") == "server started")
    assert started["http_tls"] and not started["http_mutual_tls"]


def test_plaintext_a_wrong_ca_and_garbage_are_refused_and_counted(pki, make_server):
    s = make_server(MODELS, *https_args(pki), ready=False)
    wait_for(lambda: "server started" in s.log_text(), what="the server")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{s.http_port}/readyz", timeout=5)
    assert curl("--cacert", str(pki["other_ca"]), url(s)).returncode != 0
    with socket.create_connection(("127.0.0.1", s.http_port)) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05garbage-that-is-no-client-hello" * 10)
        raw.settimeout(10)
        try:
            while raw.recv(4096):  # an alert, then the close
                pass
        except ConnectionResetError:
            pass
    assert curl("--cacert", str(pki["ca"]), url(s)).returncode == 0, "the others are served"
    wait_for(lambda: rejected(s, "tls_handshake_failed") >= 2, what="the failed handshakes to be counted")
    assert any(l.get("msg") == "https connection closed: no TLS session" for l in s.log_lines())


def test_a_handshake_that_never_completes_is_closed_and_counted(pki, make_server):
    s = make_server(MODELS, *https_args(pki), ready=False)
    wait_for(lambda: "server started" in s.log_text(), what="the server")
    with socket.create_connection(("127.0.0.1", s.http_port)) as silent:
        silent.settimeout(15)
        start = time.time()
        assert silent.recv(4096) == b""
        assert time.time() - start < 10
    assert rejected(s, "tls_handshake_timeout") == 1
    assert curl("--cacert", str(pki["ca"]), url(s)).returncode == 0


def test_tls_below_1_2_is_refused(pki, make_server):
    s = make_server(MODELS, *https_args(pki), ready=False)
    wait_for(lambda: "server started" in s.log_text(), what="the server")
    assert curl("--cacert", str(pki["ca"]), "--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
                url(s)).returncode != 0
    assert curl("--cacert", str(pki["ca"]), "--tlsv1.2", "--tls-max", "1.2", url(s)).returncode == 0


def test_mutual_tls_requires_a_valid_client_certificate_and_logs_its_subject(pki, make_server):
    s = make_server(MODELS, *https_args(pki, mutual=True), ready=False)
    wait_for(lambda: "server started" in s.log_text(), what="the server")
    ca = ["--cacert", str(pki["ca"])]
    assert curl(*ca, url(s)).returncode != 0, "no client certificate"
    for name in ["stranger", "expired_client"]:
        crt, key = pki[name]
        assert curl(*ca, "--cert", str(crt), "--key", str(key), url(s)).returncode != 0, name
    crt, key = pki["client"]
    body = {"inputs": [{"name": "X", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]}
    out = curl(*ca, "--cert", str(crt), "--key", str(key), "-d", json.dumps(body), url(s, "/v2/models/diabetes/infer"))
    assert out.returncode == 0 and json.loads(out.stdout)["outputs"], out.stdout + out.stderr
    lines = s.wait_for_log(lambda l: l.get("msg") == "request" and "client-1" in l.get("tls_identity", ""))
    assert any(l.get("msg") == "request" and l["tls_identity"] == "CN=client-1" for l in lines), lines[-3:]
    assert rejected(s, "tls_handshake_failed") >= 3


def test_tokens_work_over_tls(pki, make_server, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "c", "token": "c-token-0123456789abcdef",
                                              "scopes": ["metadata"]}]}))
    s = make_server(MODELS, *https_args(pki), "--auth-tokens-file", str(tokens), ready=False)
    wait_for(lambda: "server started" in s.log_text(), what="the server")
    assert requests.get(url(s), verify=str(pki["ca"])).status_code == 401
    assert requests.get(url(s), verify=str(pki["ca"]),
                        headers={"Authorization": "Bearer c-token-0123456789abcdef"}).status_code == 200


@pytest.mark.not_under_emulation("counts answers under load during a rotation, with a wall-clock budget")
def test_certificates_rotate_without_a_restart_and_without_a_failed_request(pki, make_server, tmp_path):
    sessions = {}

    def start(crt, key):
        s = make_server(MODELS, "--http-tls-cert", str(crt), "--http-tls-key", str(key), "--tls-reload-s", "1",
                        ready=False)
        wait_for(lambda: "server started" in s.log_text(), what="the server")
        return s

    def request(s, fresh):
        if fresh or fresh not in sessions:
            sessions[fresh] = requests.Session()
        r = sessions[fresh].get(url(s), verify=str(pki["ca"]), timeout=10)
        assert r.status_code == 200, r.status_code

    s, failures, answers = rotation_under_load(pki, tmp_path, start, request, lambda s: s.http_port, "http/1.1")
    assert not failures, failures[:3]
    assert answers > 20
    assert metric_sum(s.metrics_text(), "inference_secret_reloads_total", secret="http-tls", result="ok") >= 1
