"""Autoscaling on queue time (deploy/k8s/components/keda-autoscaling, docs/deploy.md#scaling): the ScaledObject's
Prometheus query, taken from the rendered kind-keda overlay (not a copy), on a real Prometheus scraping a real
server, read as KEDA v2.21's prometheus scaler reads it (pkg/scalers/prometheus_scaler.go: no series or NaN is
0 with ignoreNullValues, its default; more than one series is an error). Idle, the signal is below the
threshold; with more clients than a batching model can serve it crosses it. Beside it, what the CPU trigger
(and the plain HPA) sees: the server's CPU seconds per second over the Deployment's CPU request."""
import math
import threading
import time

import numpy as np
import pytest
import yaml

from conftest import ROOT, wait_for
from test_lifecycle import slow_model
from test_observability import Prometheus


def overlay():
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "deploy"))
    from deploy_support import DEPLOY, kustomize

    objects = [d for d in yaml.safe_load_all(kustomize(DEPLOY / "k8s" / "overlays" / "kind-keda")) if d]
    (so,) = [o for o in objects if o["kind"] == "ScaledObject"]
    (trigger,) = [t for t in so["spec"]["triggers"] if t["type"] == "prometheus"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "inference-server"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    cpu = container["resources"]["requests"]["cpu"]
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return trigger["metadata"]["query"], float(trigger["metadata"]["threshold"]), cores


def keda_value(prom, query):
    result = prom.query(query)
    assert len(result) <= 1, f"KEDA refuses a query with several series: {result}"
    if not result:
        return 0.0
    v = float(result[0]["value"][1])
    return 0.0 if math.isnan(v) or math.isinf(v) else v


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.not_under_emulation("a queue time in seconds against a wall-clock threshold, and CPU utilization")
def test_the_queue_signal_is_below_its_threshold_idle_and_crosses_it_overloaded(tmp_path, make_server):
    import grpc
    from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

    query, threshold, cpu_request = overlay()
    repo = tmp_path / "repo"
    slow_model(repo / "batched" / "1" / "model.onnx", depth=256)
    (repo / "batched" / "config.pbtxt").write_text(
        'backend: "onnxruntime"\nmax_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 1000 }\n'
        'instance_group [ { count: 1 kind: KIND_CPU } ]\n')
    server = make_server(repo)
    prom = Prometheus(tmp_path, f"127.0.0.1:{server.metrics_port}", None, rule_files=[],
                      labels={"namespace": "inference", "pod": "inference-server-0"})
    wrong_label = query.replace('namespace="inference"', 'namespace="other"')
    assert wrong_label != query
    try:
        wait_for(lambda: prom.value('up{job="inference-server"}') == 1, timeout=30, what="the first scrape")
        time.sleep(3)
        idle = keda_value(prom, query)
        assert idle < threshold, f"idle: {idle} s per request is over the threshold {threshold}"

        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
        req = pb.ModelInferRequest(model_name="batched")
        req.inputs.add(name="X", datatype="FP32", shape=[1, 1024])
        req.raw_input_contents.append(np.ones((1, 1024), np.float32).tobytes())
        errors = []

        def load(clients, done):
            """`clients` closed-loop gRPC clients until done(signal values) says stop; the values read every
            second, and the CPU utilization the HPA would see over the same time."""
            stop = threading.Event()

            def client():
                while not stop.is_set():
                    try:
                        stub.ModelInfer(req, timeout=60)
                    except grpc.RpcError as e:
                        errors.append(e.code())

            threads = [threading.Thread(target=client) for _ in range(clients)]
            cpu_before, start = cpu_seconds(server.proc.pid), time.time()
            for t in threads:
                t.start()
            values = []
            try:
                while not done(values):
                    time.sleep(1)
                    values.append(keda_value(prom, query))
                misread = keda_value(prom, wrong_label)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            utilization = (cpu_seconds(server.proc.pid) - cpu_before) / (time.time() - start) / cpu_request
            return values, utilization, misread

        # One client: never more than the batcher's 1 ms wait, whatever CPU it takes.
        one, one_cpu, _ = load(1, lambda v: len(v) >= 8)
        # 128 clients, seven full batches waiting behind the one running: the signal crosses the threshold. (48
        # clients, three batches waiting, settled at 0.049 s, just under it, on CI's machine and this one.)
        many, many_cpu, misread = load(128, lambda v: len(v) >= 30 or (len(v) >= 5 and max(v) > threshold))
        print(f"autoscaling: queue signal idle {idle:.3f}, 1 client {max(one):.3f}, 128 clients {max(many):.3f} s per "
              f"request (threshold {threshold}); CPU {100 * one_cpu:.0f} % and {100 * many_cpu:.0f} % of the "
              f"{cpu_request} core request (target 70 %)")
        assert not errors, errors[:5]
        assert max(one) < threshold, f"one client, the signal reached {one} (threshold {threshold})"
        assert max(many) > threshold, f"overloaded, the signal stayed at {many} (threshold {threshold})"
        # The same query with a label that matches nothing reads 0: it would never scale (the test can tell).
        assert misread == 0.0
    finally:
        prom.stop()
