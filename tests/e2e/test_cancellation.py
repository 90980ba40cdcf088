"""A client that goes away before its request ran: the request leaves the queue without running, and is
counted and logged as CANCELLED (HTTP: the connection closed; gRPC: the call cancelled)."""
import json
import os
import socket

import grpc
import numpy as np
import pytest
import requests
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import metric_sum, wait_for
from test_lifecycle import inflight, slow_model


def binary_infer(model, x, binary_output=None):
    """The raw bytes of a /v2 HTTP request with X in the binary tensor extension (and `binary_output` asked for
    as binary data)."""
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape),
                        "parameters": {"binary_data_size": x.nbytes}}]}
    if binary_output:
        body["outputs"] = [{"name": binary_output, "parameters": {"binary_data": True}}]
    head = json.dumps(body).encode()
    return (b"POST /v2/models/%s/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: %d\r\n"
            b"Content-Length: %d\r\n\r\n" % (model.encode(), len(head), len(head) + x.nbytes) + head + x.tobytes())


def grpc_infer(model, x):
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    return req


def test_requests_whose_client_left_while_queued_never_run(tmp_path, make_server):
    repo = tmp_path / "repo"
    # Seconds a request here (1024 chained 256x1024x1024 MatMuls): A must outlast queueing B and C on any CPU.
    slow_model(repo / "slow" / "1" / "model.onnx", depth=1024)
    (repo / "slow" / "config.pbtxt").write_text('backend: "onnxruntime"\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n')
    s = make_server(repo)
    x = np.ones((256, 1024), dtype=np.float32)
    channel = grpc.insecure_channel(s.grpc_target)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def grpc_request():
        return grpc_infer("slow", x)

    # A occupies the only instance.
    first = stub.ModelInfer.future(grpc_request(), timeout=120)
    wait_for(lambda: inflight(s) >= 1, what="the first request running")

    # B over HTTP (binary v2 body) and C over gRPC queue behind it; then both clients leave.
    http = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    http.sendall(binary_infer("slow", x))
    wait_for(lambda: inflight(s) >= 2, what="the HTTP request queued")
    third = stub.ModelInfer.future(grpc_request(), timeout=120)
    wait_for(lambda: inflight(s) >= 3, what="the gRPC request queued")
    http.close()
    third.cancel()

    assert first.result().model_name == "slow"  # A ran to the end
    text = lambda: s.metrics_text()  # noqa: E731
    wait_for(lambda: metric_sum(text(), "inference_requests_total", model="slow", code="CANCELLED") == 2,
             timeout=30, what="two CANCELLED requests")
    t = text()
    assert metric_sum(t, "inference_executions_total", model="slow") == 1, "a cancelled request ran"
    assert metric_sum(t, "inference_requests_total", model="slow", code="OK") == 1
    lines = s.wait_for_log(lambda l: l.get("status") == "CANCELLED")
    cancelled = {l["protocol"] for l in lines if l.get("status") == "CANCELLED"}
    assert cancelled == {"http-v2", "grpc-v2"}, cancelled
    # Both still serve.
    assert requests.get(s.http + "/v2/health/ready", timeout=5).status_code == 200
    channel.close()


def test_a_client_that_leaves_while_its_request_executes_is_counted_cancelled(tmp_path, make_server):
    """The model cannot be stopped mid-run: the request runs to its end, its reply is dropped, and it is counted
    and logged CANCELLED (not OK: nobody got the answer), over HTTP (connection closed) and gRPC (call cancelled).
    The server then serves the next request as before."""
    repo = tmp_path / "repo"
    slow_model(repo / "slow" / "1" / "model.onnx", depth=256)
    (repo / "slow" / "config.pbtxt").write_text('backend: "onnxruntime"\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n')
    s = make_server(repo)
    x = np.ones((256, 1024), dtype=np.float32)
    text = lambda: s.metrics_text()  # noqa: E731
    executing = lambda: inflight(s) >= 1 and metric_sum(text(), "inference_queue_depth", model="slow") == 0  # noqa: E731

    http = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    http.sendall(binary_infer("slow", x))
    wait_for(executing, what="the HTTP request executing")
    http.close()
    wait_for(lambda: metric_sum(text(), "inference_executions_total", model="slow") == 1, timeout=120,
             what="the HTTP request's execution done")

    channel = grpc.insecure_channel(s.grpc_target)
    req = grpc_infer("slow", x)
    call = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer.future(req, timeout=120)
    wait_for(executing, what="the gRPC request executing")
    call.cancel()
    wait_for(lambda: metric_sum(text(), "inference_executions_total", model="slow") == 2, timeout=120,
             what="the gRPC request's execution done")

    wait_for(lambda: metric_sum(text(), "inference_requests_total", model="slow", code="CANCELLED") == 2,
             timeout=30, what="both counted CANCELLED")
    assert metric_sum(text(), "inference_requests_total", model="slow", code="OK") == 0
    lines = s.wait_for_log(lambda l: l.get("status") == "CANCELLED" and l.get("protocol") == "grpc-v2")
    cancelled = [l for l in lines if l.get("status") == "CANCELLED"]
    assert {l["protocol"] for l in cancelled} == {"http-v2", "grpc-v2"}, cancelled
    assert all("while the request executed" in l["error"] for l in cancelled), cancelled
    reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(req, timeout=120)
    assert np.frombuffer(reply.raw_output_contents[0], np.float32).shape == (256 * 1024,)
    channel.close()


@pytest.mark.not_under_emulation("forty-two 4096x1024x1024 model runs for the 16 MiB replies take minutes under qemu")
def test_a_client_that_leaves_while_its_reply_is_written_costs_nothing_after(tmp_path, make_server):
    """A 16 MiB reply the client stops reading: over HTTP it reads the status line and closes (with unread data:
    a reset); over gRPC its receive limit (1 MiB) makes it cancel the call at the message's length prefix. Both
    while the server still has megabytes to write. Twenty times each: the server drops each connection and its
    buffers (open connections back to none, RSS bounded), and answers another client at once throughout."""
    repo = tmp_path / "repo"
    slow_model(repo / "big" / "1" / "model.onnx", depth=1)
    (repo / "big" / "config.pbtxt").write_text('backend: "onnxruntime"\n')
    s = make_server(repo)
    x = np.ones((4096, 1024), dtype=np.float32)  # Y: 4096 x 1024 FP32, 16 MiB
    request, req = binary_infer("big", x, binary_output="Y"), grpc_infer("big", x)
    small = grpc.insecure_channel(s.grpc_target, options=[("grpc.max_receive_message_length", 1 << 20)])
    stub = pb_grpc.GRPCInferenceServiceStub(small)

    def rss_mib():
        status = open(f"/proc/{s.proc.pid}/status").read()
        return int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1]) / 1024

    def leave_while_http_reply_is_written():
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the reply backs up in the server
        c.settimeout(120)
        c.connect(("127.0.0.1", s.http_port))
        c.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            got += c.recv(1024)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
        c.close()

    def leave_while_grpc_reply_is_written():
        try:
            stub.ModelInfer(req, timeout=120)
            raise AssertionError("a 16 MiB reply passed a 1 MiB receive limit")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e

    def answered_at_once():
        r = requests.get(s.http + "/v2/models/big", timeout=5)
        assert r.status_code == 200

    leave_while_http_reply_is_written()
    leave_while_grpc_reply_is_written()
    before = rss_mib()
    for _ in range(20):
        leave_while_http_reply_is_written()
        answered_at_once()
        leave_while_grpc_reply_is_written()
        answered_at_once()
    wait_for(lambda: metric_sum(s.metrics_text(), "inference_http_connections") <= 1, timeout=30,
             what="the abandoned HTTP connections closed")
    grown = rss_mib() - before
    # AddressSanitizer holds freed memory in its quarantine (256 MiB): RSS says nothing there.
    if os.environ.get("SERVING_SANITIZER") != "asan":
        assert grown < 64, f"RSS grew {grown:.0f} MiB over 40 abandoned 16 MiB replies"
    full = grpc.insecure_channel(s.grpc_target, options=[("grpc.max_receive_message_length", 64 << 20)])
    reply = pb_grpc.GRPCInferenceServiceStub(full).ModelInfer(req, timeout=120)
    assert len(reply.raw_output_contents[0]) == x.nbytes
    small.close()
    full.close()
