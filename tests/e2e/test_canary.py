"""Canary and shadow tracks (deploy/k8s/components/canary, docs/deploy.md#canary-deployments) through the real
Envoy running deploy/k8s/base/inference/envoy.yaml (only addresses, ports and paths changed: tests/e2e/proxies.py)
in front of three real servers, one per track, each serving its own version of the model `m`: stable 1,
canary 2, shadow 3 (Y = X times the version, so an answer tells which one computed it).

The shares are set with scripts/canary.sh. No cluster runs here, so its kubectl is a stand-in
(tests/e2e/kubectl_standin.py) that answers from the rendered kind-canary overlay and writes the envoy-runtime
ConfigMap into Envoy's runtime directory the way the kubelet writes a mounted ConfigMap (a new directory, then
an atomic rename of `..data`); Envoy itself notices the rename and reloads, as in the pod."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import yaml
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import ROOT, Server, metric_sum, wait_for
from proxies import Envoy

MODEL = "m"
WIDTH = 4
STANDIN = pathlib.Path(__file__).parent / "kubectl_standin.py"
# Under qemu (make test-arm64) the pin and no-ConfigMap test runs; the thousands of requests of the others measure
# Envoy's routing, which is native there too, and would take minutes through the emulated servers.
NATIVE_ONLY = pytest.mark.not_under_emulation("thousands of requests: Envoy's routing, native under emulation too")


def scale_model(path, factor):
    """X [N, 4] FP32 -> Y = X * factor."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "k"], ["Y"])], "scale",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", WIDTH])],
        initializer=[helper.make_tensor("k", TensorProto.FLOAT, [1], [float(factor)])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def rendered_overlay():
    sys.path.insert(0, str(ROOT / "tests" / "deploy"))
    from deploy_support import DEPLOY, kustomize

    return [d for d in yaml.safe_load_all(kustomize(DEPLOY / "k8s" / "overlays" / "kind-canary")) if d]


class Tracks:
    def __init__(self, tmp, pki):
        self.servers = {}
        for version, track in enumerate(["stable", "canary", "shadow"], start=1):
            repo = tmp / track
            scale_model(repo / MODEL / str(version) / "model.onnx", version)
            (repo / MODEL / "config.pbtxt").write_text('backend: "onnxruntime"\n')
            self.servers[track] = Server(repo, [], tmp_path=tmp, tls=pki).wait_ready()
        self.runtime = tmp / "envoy-runtime"  # the mount of the (not yet existing) ConfigMap envoy-runtime
        self.runtime.mkdir()
        self.envoy = Envoy(tmp, [self.servers["stable"]], runtime_dir=self.runtime,
                           tracks={"canary": [self.servers["canary"]], "shadow": [self.servers["shadow"]]})
        self.envoy.wait_all_healthy(6)
        self.state = tmp / "kubectl"
        self.state.mkdir()
        self.objects = tmp / "kind-canary.json"
        self.objects.write_text(json.dumps(rendered_overlay()))
        self.session = requests.Session()
        self.stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(self.envoy.target))

    def canary_sh(self, *args):
        """scripts/canary.sh ARGS; then waits until Envoy's runtime holds what the script wrote."""
        env = {**os.environ, "KUBECTL": f"{sys.executable} {STANDIN}", "CANARY_STATE": str(self.state),
               "CANARY_OBJECTS": str(self.objects), "CANARY_RUNTIME": str(self.runtime),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "e2e"), str(ROOT / "tests")])}
        out = subprocess.run(["sh", str(ROOT / "scripts" / "canary.sh"), *args], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        written = json.loads((self.state / "envoy-runtime.json").read_text())["data"]
        wait_for(lambda: self.runtime_values() == {k: int(v) for k, v in written.items()}, timeout=10,
                 what=f"Envoy to load {written}")
        return out.stdout

    def runtime_values(self):
        entries = requests.get(self.envoy.admin + "/runtime", timeout=5).json()["entries"]
        names = {"routing.canary_percent": "canary_percent", "routing.shadow_percent": "shadow_percent",
                 "tracing.random_sampling": "tracing_percent"}  # envoy-deployment.yaml's volume items
        return {names[k]: int(v["final_value"]) for k, v in entries.items() if k in names}

    def rest(self, headers=None, request_id=""):
        """One v2 REST request through Envoy: (track header, model_version, factor the answer shows)."""
        x = np.random.rand(1, WIDTH).astype(np.float32) + 0.5
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, WIDTH], "data": x.ravel().tolist()}]}
        if request_id:
            body["id"] = request_id
        r = self.session.post(f"{self.envoy.url}/v2/models/{MODEL}/infer", json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        y = np.array(r.json()["outputs"][0]["data"], np.float32)
        return r.headers.get("x-inference-track"), r.json()["model_version"], round(float(np.mean(y / x.ravel())))

    def grpc(self, metadata=None, request_id=""):
        """The same over gRPC (KServe v2)."""
        x = np.random.rand(1, WIDTH).astype(np.float32) + 0.5
        req = pb.ModelInferRequest(model_name=MODEL, id=request_id)
        req.inputs.add(name="X", datatype="FP32", shape=[1, WIDTH])
        req.raw_input_contents.append(x.tobytes())
        reply, call = self.stub.ModelInfer.with_call(req, metadata=metadata, timeout=30)
        y = np.frombuffer(reply.raw_output_contents[0], np.float32)
        track = dict(call.initial_metadata()).get("x-inference-track")
        return track, reply.model_version, round(float(np.mean(y / x.ravel())))

    def stop(self):
        self.envoy.stop()
        return [s.stop() for s in self.servers.values()]


@pytest.fixture(scope="module")
def tracks(tmp_path_factory, pki):
    t = Tracks(tmp_path_factory.mktemp("canary"), pki)
    yield t
    if t.servers["shadow"].proc.poll() is None:
        os.kill(t.servers["shadow"].proc.pid, signal.SIGCONT)  # if a test stopped it and then failed
    assert t.stop() == [0, 0, 0]


def consistent(answers):
    """Each answer names one track three ways: Envoy's header, the version the server names, what it computed."""
    expected = {"stable": "1", "canary": "2"}
    for track, version, factor in answers:
        assert (expected.get(track), int(version)) == (version, factor), (track, version, factor)
    return [a[0] for a in answers]


def test_no_configmap_sends_everything_to_stable_and_the_pin_header_reaches_the_canary(tracks):
    assert tracks.runtime_values() == {}  # the ConfigMap does not exist: 0 % each
    assert set(consistent([tracks.rest() for _ in range(50)] + [tracks.grpc() for _ in range(50)])) == {"stable"}
    pinned = ([tracks.rest(headers={"x-inference-track": "canary"}) for _ in range(50)] +
              [tracks.grpc(metadata=[("x-inference-track", "canary")]) for _ in range(50)])
    assert set(consistent(pinned)) == {"canary"}
    # Any other value is not a pin.
    assert set(consistent([tracks.rest(headers={"x-inference-track": "Canary"}) for _ in range(20)])) == {"stable"}


@NATIVE_ONLY
def test_at_ten_percent_two_thousand_requests_split_ten_percent_on_rest_and_grpc(tracks):
    out = tracks.canary_sh("set", "10")
    assert "10 % of requests to the canary" in out
    pin = {tracks.rest: {"headers": {"x-inference-track": "canary"}},
           tracks.grpc: {"metadata": [("x-inference-track", "canary")]}}
    for send in (tracks.rest, tracks.grpc):
        seen = consistent([send() for _ in range(2000)])
        share = seen.count("canary") / len(seen)
        print(f"canary share over {send.__name__}: {100 * share:.1f} % of 2,000")
        assert 0.08 <= share <= 0.12, f"{send.__name__}: {100 * share:.1f} % to the canary at 10 %"
        assert consistent([send(**pin[send]) for _ in range(20)]) == ["canary"] * 20  # the pin still wins
    assert tracks.canary_sh("status").startswith("canary: 10 % of requests to the canary; 0 %")


@NATIVE_ONLY
def test_set_rollback_and_promote_move_traffic_without_a_failed_request(tracks):
    answers, failures, stop = [], [], threading.Event()

    def client(send):
        while not stop.is_set():
            try:
                sent = time.monotonic()
                answers.append((sent, send()[0]))
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(send,)) for send in (tracks.rest, tracks.grpc) for _ in range(2)]
    for t in threads:
        t.start()

    def share_after(change):
        """The canary's share of the requests sent once Envoy has loaded the change."""
        tracks.canary_sh(*change)
        since = time.monotonic()
        time.sleep(2)
        window = [track for at, track in answers if at > since]
        assert len(window) > 100, f"only {len(window)} answers after {change}"
        return window.count("canary") / len(window)

    try:
        assert share_after(["set", "50"]) == pytest.approx(0.5, abs=0.15)
        assert share_after(["rollback"]) == 0.0
        assert share_after(["set", "100"]) == 1.0
        promoted = share_after(["promote"])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:5]
    assert promoted == 0.0
    # promote: the stable Deployment took the canary's image and arguments, rolled out, then the share went to 0.
    calls = [json.loads(line) for line in (tracks.state / "calls.jsonl").read_text().splitlines()]
    canary = next(o for o in json.loads(tracks.objects.read_text()) if o["metadata"]["name"] == "inference-server-canary")
    (container,) = canary["spec"]["template"]["spec"]["containers"]
    patches = [c for c in calls if c[2:4] == ["patch", "deployment"]]
    assert len(patches) == 1 and patches[0][4] == "inference-server", patches
    assert json.loads(patches[0][-1]) == [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": container["image"]},
        {"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": container["args"]}]
    order = [c[2] for c in calls if c[2] in ("patch", "rollout", "apply")]
    assert order[-3:] == ["patch", "rollout", "apply"], order


def test_canary_sh_sets_envoys_tracing_share_and_keeps_it_when_the_canary_share_changes(tracks):
    assert "; 5 % traced" in tracks.canary_sh("tracing", "5")  # canary_sh waits for Envoy's runtime to hold it
    assert "; 5 % traced" in tracks.canary_sh("set", "0")
    assert tracks.runtime_values()["tracing_percent"] == 5
    tracks.canary_sh("tracing", "100")


def test_canary_sh_refuses_a_share_that_is_not_a_percentage(tracks):
    env = {**os.environ, "KUBECTL": "false"}
    for bad in (["set", "101"], ["set", "-1"], ["set", "ten"], ["set", ""], ["shadow", "5.5"], ["set"], ["nope"],
                ["tracing", "101"], ["tracing"]):
        out = subprocess.run(["sh", str(ROOT / "scripts" / "canary.sh"), *bad], env=env, capture_output=True, text=True)
        assert out.returncode == 2 and "canary:" in out.stderr, (bad, out.stdout, out.stderr)


def served(server):
    return metric_sum(server.metrics_text(), "inference_requests_total", model=MODEL)


def p99(seconds):
    return float(np.percentile(seconds, 99))


def timed(tracks, n):
    out = []
    for i in range(n):
        send = tracks.rest if i % 2 else tracks.grpc
        start = time.perf_counter()
        send()
        out.append(time.perf_counter() - start)
    return out


@NATIVE_ONLY
def test_the_shadow_gets_a_copy_of_each_request_and_its_stop_or_death_reaches_no_client(tracks):
    tracks.canary_sh("rollback")
    tracks.canary_sh("shadow", "100")
    stable, shadow = tracks.servers["stable"], tracks.servers["shadow"]
    before = (served(stable), served(shadow))
    ids = [f"shadowed-{i}" for i in range(200)]
    answers = [tracks.rest(request_id=i) if n % 2 else tracks.grpc(request_id=i) for n, i in enumerate(ids)]
    assert set(consistent(answers)) == {"stable"}  # the client gets stable's answer, never the shadow's
    wait_for(lambda: served(shadow) - before[1] == 200, timeout=10, what="the shadow to receive the 200 copies")
    assert served(stable) - before[0] == 200
    # The request id joins the shadow's log lines with stable's (the copy carries the same body and headers).
    for server in (stable, shadow):
        logged = {line["request_id"] for line in server.log_lines() if line.get("msg") == "request"}
        assert set(ids) <= logged
    baseline = timed(tracks, 300)

    # The shadow stops answering (SIGSTOP: its connections stay open, its copies hang until Envoy's timeout).
    os.kill(shadow.proc.pid, signal.SIGSTOP)
    try:
        stopped = timed(tracks, 300)
    finally:
        os.kill(shadow.proc.pid, signal.SIGCONT)
    print(f"shadow: client p99 {1000 * p99(baseline):.1f} ms with it answering, {1000 * p99(stopped):.1f} ms "
          f"with it stopped")
    assert p99(stopped) < 2 * p99(baseline) + 0.02, (p99(baseline), p99(stopped))

    # The shadow's process exits: copies are refused, clients see nothing of it.
    assert shadow.stop() == 0
    gone = timed(tracks, 200)
    assert p99(gone) < 2 * p99(baseline) + 0.02, (p99(baseline), p99(gone))
    tracks.canary_sh("shadow", "0")
