"""TLS and mutual TLS on the gRPC port with certificates made at test time: real clients (grpcio, tritonclient,
grpcurl, perf_analyzer) with and without client certificates, the refusals (plaintext to a TLS port, a wrong CA,
no or an expired client certificate, a handshake that never completes, garbage instead of a ClientHello) each
closing that connection only, and certificate rotation by swapping the files as Kubernetes does, under load."""
import os
import socket
import ssl
import subprocess
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pb_grpc

from certs import peer_certificate_cn, rotation_under_load
from conftest import EMULATED, MODELS, metric_sum, wait_for


def tls_args(pki, mutual=False):
    crt, key = pki["server"]
    args = ["--grpc-tls-cert", str(crt), "--grpc-tls-key", str(key), "--tls-handshake-timeout-s", "2"]
    return args + (["--grpc-tls-client-ca", str(pki["ca"])] if mutual else [])


def rejected(s, reason):
    return metric_sum(s.metrics_text(), "inference_transport_rejected_total", protocol="grpc", reason=reason)


def credentials(ca, client=None):
    chain = key = None
    if client:
        chain, key = client[0].read_bytes(), client[1].read_bytes()
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes(), private_key=key, certificate_chain=chain)


def server_metadata(target, creds=None, timeout=10):
    """ServerMetadata over a fresh channel: the grpc.StatusCode it ends with."""
    ch = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    with ch:
        try:
            pb_grpc.GRPCInferenceServiceStub(ch).ServerMetadata(pb.ServerMetadataRequest(), timeout=timeout)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


def test_grpc_over_tls_serves_real_clients_and_refuses_plaintext_and_wrong_cas(pki, make_server):
    s = make_server(MODELS, *tls_args(pki))
    assert server_metadata(s.grpc_target, credentials(pki["ca"])) == grpc.StatusCode.OK
    client = tgrpc.InferenceServerClient(s.grpc_target, ssl=True, root_certificates=str(pki["ca"]))
    x = tgrpc.InferInput("X", [2, 64], "FP32")
    x.set_data_from_numpy(np.zeros((2, 64), np.float32))
    assert client.infer("digits", [x]).as_numpy("probabilities").shape == (2, 10)
    assert server_metadata(s.grpc_target, timeout=3) == grpc.StatusCode.UNAVAILABLE, "plaintext to a TLS port"
    assert server_metadata(s.grpc_target, credentials(pki["other_ca"]), timeout=3) == grpc.StatusCode.UNAVAILABLE
    assert server_metadata(s.grpc_target, credentials(pki["ca"])) == grpc.StatusCode.OK, "still serving"
    started = next(l for l in s.log_lines() if l.get("msg") == "server started")
    assert started["grpc_tls"] and not started["grpc_mutual_tls"]


def test_mutual_tls_requires_a_client_certificate_from_the_ca_and_logs_its_subject(pki, make_server):
    s = make_server(MODELS, *tls_args(pki, mutual=True))
    assert server_metadata(s.grpc_target, credentials(pki["ca"]), timeout=3) == grpc.StatusCode.UNAVAILABLE
    assert server_metadata(s.grpc_target, credentials(pki["ca"], pki["stranger"]), timeout=3) == \
        grpc.StatusCode.UNAVAILABLE
    assert server_metadata(s.grpc_target, credentials(pki["ca"], pki["expired_client"]), timeout=3) == \
        grpc.StatusCode.UNAVAILABLE
    client = tgrpc.InferenceServerClient(s.grpc_target, ssl=True, root_certificates=str(pki["ca"]),
                                         private_key=str(pki["client"][1]), certificate_chain=str(pki["client"][0]))
    x = tgrpc.InferInput("X", [1, 10], "FP32")
    x.set_data_from_numpy(np.zeros((1, 10), np.float32))
    assert client.infer("diabetes", [x]).as_numpy("variable").shape == (1, 1)
    lines = s.wait_for_log(lambda l: l.get("msg") == "request" and "client-1" in l.get("tls_identity", ""))
    assert any(l.get("msg") == "request" and "CN=client-1" in l["tls_identity"] for l in lines), lines[-3:]


def test_triton_spellings_of_the_tls_flags_work(pki, make_server):
    crt, key = pki["server"]
    s = make_server(MODELS, "--grpc-use-ssl", "true", "--grpc-server-cert", str(crt), "--grpc-server-key", str(key),
                    "--grpc-use-ssl-mutual", "true", "--grpc-root-cert", str(pki["ca"]))
    assert server_metadata(s.grpc_target, credentials(pki["ca"]), timeout=3) == grpc.StatusCode.UNAVAILABLE
    assert server_metadata(s.grpc_target, credentials(pki["ca"], pki["client"])) == grpc.StatusCode.OK


def test_a_handshake_that_never_completes_or_garbage_is_closed_and_others_are_served(pki, make_server):
    s = make_server(MODELS, *tls_args(pki))
    silent = socket.create_connection(("127.0.0.1", s.grpc_port))
    garbage = socket.create_connection(("127.0.0.1", s.grpc_port))
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(512))
    assert server_metadata(s.grpc_target, credentials(pki["ca"])) == grpc.StatusCode.OK
    for sock, what in [(garbage, "garbage"), (silent, "a silent client")]:
        sock.settimeout(15)
        start = time.time()
        try:
            data = sock.recv(4096)
            while data:  # a TLS alert may come first
                data = sock.recv(4096)
        except ConnectionResetError:
            pass
        assert time.time() - start < 14, f"{what} was not closed"
        sock.close()
    assert server_metadata(s.grpc_target, credentials(pki["ca"])) == grpc.StatusCode.OK
    # Both are counted (gRPC itself counts neither) and logged, and the clients served were not.
    wait_for(lambda: rejected(s, "tls_handshake_timeout") == 1, what="the timed-out handshake to be counted")
    assert rejected(s, "tls_handshake_failed") == 1
    assert any(l.get("msg") == "grpc connection closed: no TLS session" for l in s.log_lines())


def test_tls_below_1_2_is_refused(pki, make_server):
    s = make_server(MODELS, *tls_args(pki))
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("ALL:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", s.grpc_port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            old.wrap_socket(raw)
    assert peer_certificate_cn(s.grpc_port, "h2") == "server-1"  # TLS 1.2+ with ALPN h2 is served


@pytest.mark.not_under_emulation("counts answers under load during a rotation, with a wall-clock budget")
def test_certificates_rotate_without_a_restart_and_without_a_failed_request(pki, make_server, tmp_path):
    """New connections get the new certificate within the reload interval; open ones and requests in flight are not
    disturbed."""
    clients = {}

    def request(s, fresh):
        if fresh or fresh not in clients:
            clients[fresh] = tgrpc.InferenceServerClient(s.grpc_target, ssl=True, root_certificates=str(pki["ca"]))
        inp = tgrpc.InferInput("X", [1, 64], "FP32")
        inp.set_data_from_numpy(np.zeros((1, 64), np.float32))
        clients[fresh].infer("digits", [inp])

    _, failures, answers = rotation_under_load(
        pki, tmp_path, lambda crt, key: make_server(MODELS, "--grpc-tls-cert", str(crt), "--grpc-tls-key", str(key),
                                                    "--tls-reload-s", "1"),
        request, lambda s: s.grpc_port, "h2")
    assert not failures, failures[:3]
    assert answers > 20


def test_grpcurl_and_perf_analyzer_speak_tls_to_it(pki, make_server):
    s = make_server(MODELS, *tls_args(pki))
    out = subprocess.run(["grpcurl", "-cacert", str(pki["ca"]), s.grpc_target, "inference.GRPCInferenceService/ServerLive"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '"live": true' in out.stdout, out.stdout + out.stderr
    if EMULATED:
        return  # perf_analyzer is an x86 binary timing the server: the native run covers it
    out = subprocess.run(["perf_analyzer", "-m", "digits", "-i", "grpc", "-u", s.grpc_target, "--ssl-grpc-use-ssl",
                          "--ssl-grpc-root-certifications-file", str(pki["ca"]), "--measurement-interval", "500",
                          "--concurrency-range", "1", "--shape", "X:1,64", "--max-trials", "3", "-s", "50"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Throughput" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
