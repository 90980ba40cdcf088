"""Many clients at once, over every protocol, each with its own inputs: every answer must be the right one
for its own request (no cross-talk, nothing dropped), and bad requests in the mix must not disturb the rest.
Bounded: 12 threads x 50 requests, against loopback."""
import random
import socket
import threading

import grpc
import numpy as np
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from inference.v1 import inference_pb2, inference_pb2_grpc

THREADS, REQUESTS = 12, 50


def test_concurrent_mixed_protocols_get_their_own_answers(server, reference):
    failures, done = [], []
    lock = threading.Lock()

    def check(kind, x, got):
        expected = reference("digits", x)["probabilities"]
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-5):
            with lock:
                failures.append(f"{kind}: wrong answer for batch of {len(x)}")

    def worker(seed):
        rng = random.Random(seed)
        session = requests.Session()
        http_client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
        grpc_client = tgrpc.InferenceServerClient(server.grpc_target)
        channel = grpc.insecure_channel(server.grpc_target)
        v1 = inference_pb2_grpc.InferenceServiceStub(channel)
        for i in range(REQUESTS):
            x = np.random.default_rng(seed * 1000 + i).random((rng.randint(1, 16), 64)).astype(np.float32) * 16
            kind = rng.choice(["rest-v1", "rest-v2-json", "http-v2-binary", "grpc-v1", "grpc-v2", "bad"])
            try:
                if kind == "rest-v1":
                    r = session.post(server.http + "/v1/infer",
                                     json={"model": "digits", "rows": [{"values": row} for row in x.tolist()]})
                    check(kind, x, np.array([p["scores"] for p in r.json()["predictions"]], dtype=np.float32))
                elif kind == "rest-v2-json":
                    r = session.post(server.http + "/v2/models/digits/infer", json={
                        "inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}],
                        "outputs": [{"name": "probabilities"}]})
                    out = r.json()["outputs"][0]
                    check(kind, x, np.array(out["data"], dtype=np.float32).reshape(out["shape"]))
                elif kind == "http-v2-binary":
                    inp = thttp.InferInput("X", list(x.shape), "FP32")
                    inp.set_data_from_numpy(x)
                    check(kind, x, http_client.infer("digits", [inp]).as_numpy("probabilities"))
                elif kind == "grpc-v1":
                    resp = v1.Infer(inference_pb2.InferRequest(model="digits", rows=[inference_pb2.Row(values=r) for r in x]))
                    check(kind, x, np.array([list(p.scores) for p in resp.predictions], dtype=np.float32))
                elif kind == "grpc-v2":
                    inp = tgrpc.InferInput("X", list(x.shape), "FP32")
                    inp.set_data_from_numpy(x)
                    check(kind, x, grpc_client.infer("digits", [inp]).as_numpy("probabilities"))
                else:
                    r = session.post(server.http + "/v2/models/digits/infer", json={
                        "inputs": [{"name": "X", "shape": [len(x), 63], "datatype": "FP32", "data": [0.0] * (len(x) * 63)}]})
                    if r.status_code != 400:
                        with lock:
                            failures.append(f"bad request answered {r.status_code}")
            except Exception as e:  # noqa: BLE001 - any failure counts
                with lock:
                    failures.append(f"{kind}: {e!r}")
            with lock:
                done.append(kind)
        channel.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == [], failures[:5]
    assert len(done) == THREADS * REQUESTS


def test_pipelined_http_requests_are_answered_in_order(server):
    bodies = [b'{"model":"digits","request_id":"p%d","rows":[{"values":[%s]}]}' % (i, b",".join([b"%d" % i] * 64))
              for i in range(3)]
    raw = b"".join(b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(b), b) for b in bodies)
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while data.count(b'"request_id":"p') < 3:
            chunk = s.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
    ids = [data.split(b'"request_id":"')[i + 1][:2] for i in range(3)]
    assert ids == [b"p0", b"p1", b"p2"]
    assert data.count(b"HTTP/1.1 200") == 3
