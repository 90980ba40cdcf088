"""Kubernetes-facing behaviour: gRPC health (overall and per model), reflection, HTTP probes, metrics, logs."""
import json
import re
import time

import grpc
import pytest
import requests
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def test_grpc_health_overall_and_per_model(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ["", "breast_cancer", "digits", "diabetes"]:
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
                health_pb2.HealthCheckResponse.SERVING, service
        try:
            health.Check(health_pb2.HealthCheckRequest(service="nope"))
            raise AssertionError("unknown service must be NOT_FOUND")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND


def _reflect(channel, request):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    return next(iter(stub.ServerReflectionInfo(iter([request]))))


def test_reflection_lists_services_and_drives_a_call(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        listing = _reflect(ch, reflection_pb2.ServerReflectionRequest(list_services=""))
        names = {s.name for s in listing.list_services_response.service}
        assert {"inference.v1.InferenceService", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names
        # Build the v1 messages from reflection alone (as grpcurl does) and call ListModels.
        files = _reflect(ch, reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="inference.v1.InferenceService")).file_descriptor_response.file_descriptor_proto
        pool = descriptor_pool.DescriptorPool()
        protos = [descriptor_pb2.FileDescriptorProto.FromString(f) for f in files]
        pending = {p.name: p for p in protos}
        while pending:  # add in dependency order
            for name, p in list(pending.items()):
                if all(d not in pending for d in p.dependency):
                    pool.Add(p)
                    del pending[name]
        req_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.v1.ListModelsRequest"))
        resp_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.v1.ListModelsResponse"))
        call = ch.unary_unary("/inference.v1.InferenceService/ListModels",
                              request_serializer=req_cls.SerializeToString, response_deserializer=resp_cls.FromString)
        assert [m.name for m in call(req_cls()).models] == ["breast_cancer", "diabetes", "digits"]


def test_http_probes(server):
    assert requests.get(server.http + "/healthz").status_code == 200
    assert requests.get(server.http + "/readyz").status_code == 200


def test_metrics_count_requests_by_model_and_code(server, datasets):
    def value(text, pattern):
        m = re.search(pattern + r" ([0-9.e+]+)", text)
        return float(m.group(1)) if m else 0.0

    ok_pattern = r'inference_requests_total\{code="OK",model="breast_cancer",protocol="http-v1",version="1"\}'
    bad_pattern = r'inference_requests_total\{code="INVALID_ARGUMENT",model="breast_cancer",protocol="http-v1",version="1"\}'
    rows_pattern = r'inference_rows_total\{model="breast_cancer",version="1"\}'
    # The server is shared: count deltas. Earlier tests' counts settle first (a request is counted just
    # after its reply is handed back).
    def counts():
        return "\n".join(l for l in server.metrics_text().splitlines()
                         if l.startswith(("inference_requests_total", "inference_rows_total")))

    before = counts()
    while time.sleep(0.2) or counts() != before:
        before = counts()
    x = datasets["breast_cancer"].data[:3].tolist()
    requests.post(server.http + "/v1/infer", json={"model": "breast_cancer", "rows": [{"values": r} for r in x]})
    requests.post(server.http + "/v1/infer", json={"model": "breast_cancer", "rows": []})

    def delta(pattern):
        return value(text, pattern) - value(before, pattern)

    deadline = time.time() + 10
    while True:
        text = server.metrics_text()
        if (delta(ok_pattern) >= 1 and delta(bad_pattern) >= 1) or time.time() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    text = server.metrics_text()
    assert (delta(ok_pattern), delta(bad_pattern), delta(rows_pattern)) == (1, 1, 3)
    assert 'inference_model_state{model="digits",state="READY",version="1"} 1' in text
    assert "inference_request_duration_seconds_bucket" in text


def test_every_log_line_is_json_with_request_fields(server, datasets):
    requests.post(server.http + "/v1/infer", json={"model": "digits", "rows": [{"values": [0.0] * 64}]},
                  headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    # every line must parse as JSON
    lines = server.wait_for_log(lambda l: l.get("trace_id") == "4bf92f3577b34da6a3ce929d0e0e4736")
    access = [l for l in lines if l["msg"] == "request" and l.get("trace_id") == "4bf92f3577b34da6a3ce929d0e0e4736"]
    assert access, "the traceparent's trace id is logged"
    line = access[-1]
    for key in ["ts", "level", "request_id", "model", "version", "protocol", "status", "latency_us"]:
        assert key in line, key
    assert line["model"] == "digits" and line["status"] == "OK" and line["protocol"] == "http-v1"
    assert any(l["msg"] == "model state changed" and l["state"] == "READY" for l in lines)
    json.dumps(lines)


def test_grpcurl_lists_and_calls_through_reflection(server):
    import pathlib
    import shutil
    import subprocess

    grpcurl = pathlib.Path(__file__).resolve().parents[2] / ".deps" / "bin" / "grpcurl"
    grpcurl = str(grpcurl) if grpcurl.exists() else shutil.which("grpcurl")
    if not grpcurl:
        pytest.skip("grpcurl not built (scripts/install-deps.sh needs a Go toolchain); reflection is "
                    "covered by test_reflection_lists_services_and_drives_a_call")
    run = lambda *args: subprocess.run([grpcurl, "-plaintext", *args], capture_output=True, text=True, timeout=30)
    listing = run(server.grpc_target, "list")
    assert listing.returncode == 0, listing.stderr
    assert "inference.v1.InferenceService" in listing.stdout and "grpc.health.v1.Health" in listing.stdout
    health = run("-d", '{"service":"digits"}', server.grpc_target, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout) == {"status": "SERVING"}, health.stderr
    infer = run("-d", json.dumps({"model": "digits", "rows": [{"values": [0.0] * 64}]}), server.grpc_target,
                "inference.v1.InferenceService/Infer")
    assert infer.returncode == 0, infer.stderr
    assert json.loads(infer.stdout)["model"] == "digits"


def test_grpc_traceparent_metadata_is_logged(server):
    from inference.v1 import inference_pb2, inference_pb2_grpc

    trace = "0af7651916cd43dd8448eb211c80319c"
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        stub.Infer(inference_pb2.InferRequest(model="digits", request_id="traced",
                                              rows=[inference_pb2.Row(values=[0.0] * 64)]),
                   metadata=[("traceparent", f"00-{trace}-b7ad6b7169203331-01")])
    lines = [l for l in server.wait_for_log(lambda l: l.get("request_id") == "traced")
             if l.get("request_id") == "traced"]
    assert lines and lines[0]["trace_id"] == trace and lines[0]["protocol"] == "grpc-v1"


def test_requests_without_traceparent_get_a_generated_trace_id(server):
    requests.post(server.http + "/v1/infer", json={"model": "digits", "request_id": "untraced",
                                                   "rows": [{"values": [0.0] * 64}]})
    line = [l for l in server.wait_for_log(lambda l: l.get("request_id") == "untraced")
            if l.get("request_id") == "untraced"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])


def test_strict_readiness_needs_every_model_and_can_be_turned_off(make_server, tmp_path):
    """A half-copied model (a version without config.pbtxt) keeps a strict server unready (the default, as
    Triton); with --strict-readiness=false the server is ready and serves, and only that model says it is not."""
    import shutil

    from conftest import MODELS

    repo = tmp_path / "repo"
    shutil.copytree(MODELS / "diabetes", repo / "diabetes")
    (repo / "half" / "1").mkdir(parents=True)
    shutil.copy(MODELS / "diabetes" / "1" / "model.onnx", repo / "half" / "1" / "model.onnx")

    def overall(server):
        with grpc.insecure_channel(server.grpc_target) as ch:
            return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="")).status

    strict = make_server(repo, ready=False)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(f"{strict.http}/v2/models/diabetes/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    assert requests.get(strict.http + "/readyz").status_code == 503
    assert requests.get(strict.http + "/v2/health/ready").status_code != 200
    assert overall(strict) == health_pb2.HealthCheckResponse.NOT_SERVING

    lax = make_server(repo, "--strict-readiness=false")
    assert requests.get(lax.http + "/readyz").status_code == 200
    assert overall(lax) == health_pb2.HealthCheckResponse.SERVING
    assert requests.get(lax.http + "/v2/models/half/ready").status_code != 200
    assert requests.get(lax.http + "/v2/models/diabetes/ready").status_code == 200
    assert '"strict_readiness":false' in lax.log_text()
