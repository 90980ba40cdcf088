"""A client that goes away before its request ran: the request leaves the queue without running, and is
counted and logged as CANCELLED (HTTP: the connection closed; gRPC: the call cancelled)."""
import json
import socket

import grpc
import numpy as np
import requests
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import metric_sum, wait_for
from test_lifecycle import inflight, slow_model


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
        req = pb.ModelInferRequest(model_name="slow")
        req.inputs.add(name="X", datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())
        return req

    # A occupies the only instance.
    first = stub.ModelInfer.future(grpc_request(), timeout=120)
    wait_for(lambda: inflight(s) >= 1, what="the first request running")

    # B over HTTP (binary v2 body) and C over gRPC queue behind it; then both clients leave.
    head = json.dumps({"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape),
                                   "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    http = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    http.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: %d\r\n"
                 b"Content-Length: %d\r\n\r\n" % (len(head), len(head) + x.nbytes) + head + x.tobytes())
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
