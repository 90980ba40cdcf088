"""Shared fixtures: start the real inference-server binary on free loopback ports and talk to it."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/: ports.py
from ports import free_port  # noqa: E402,F401 (the tests import it from here)

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("INFERENCE_SERVER", ROOT / "build" / "inference-server")).resolve()
MODELS = ROOT / "models" / "repository"
# The comparison with real NVIDIA Triton needs the benchmark peer (../shared/peers/triton-ort): `make test-triton`.
collect_ignore = [] if os.environ.get("TRITON_PEER_TEST") else ["test_triton_peer.py"]
GOOGLEAPIS = pathlib.Path("/usr/share/gocode/src/github.com/gogo/googleapis")
# Set by `make test-arm64`, which runs this suite against the arm64 server under qemu-user.
EMULATED = os.environ.get("SERVING_EMULATED", "")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "not_under_emulation(reason): measures what emulation slows down or fakes (wall-clock budgets, "
                   "RSS, a deliberately slow model); the emulated run reports it skipped with the reason")


def pytest_collection_modifyitems(config, items):
    """Under emulation, each test marked not_under_emulation is skipped with its own reason (printed by -rs, and
    allowed by no_silent_skips); every other test runs against the emulated server."""
    if not EMULATED:
        return
    for item in items:
        mark = item.get_closest_marker("not_under_emulation")
        if mark:
            reason = f"under {EMULATED}: {mark.args[0]}"
            item.add_marker(pytest.mark.allow_skip(reason))
            item.add_marker(pytest.mark.skip(reason=reason))
PYGEN = ROOT / "build" / "pygen"


def _generate_stubs():
    """Python stubs for the project's protos, generated from proto/ with grpcio-tools (never committed)."""
    from grpc_tools import protoc
    import grpc_tools

    PYGEN.mkdir(parents=True, exist_ok=True)
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    # Only inference.v1: for KServe v2 the tests use the clients' own stubs (tritonclient, kserve), which
    # register the same `inference.*` names and cannot share a process with a second copy.
    for proto in ["inference/v1/inference.proto"]:
        rc = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{GOOGLEAPIS}", f"-I{well_known}",
                          f"--python_out={PYGEN}", f"--grpc_python_out={PYGEN}", str(ROOT / "proto" / proto)])
        assert rc == 0, f"protoc failed for {proto}"
    for pkg in ["inference", "inference/v1"]:
        (PYGEN / pkg / "__init__.py").touch()
    if str(PYGEN) not in sys.path:
        sys.path.insert(0, str(PYGEN))


_generate_stubs()


def wait_for(predicate, timeout=20, what=""):
    """Polls `predicate` until it is true; fails with `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def metric_sum(text, name, **labels):
    """The sum of `name`'s samples in Prometheus text whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and \
                all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def identity_model(repository, name, dims, config="", unused_initializer=False, elem_type=None):
    """An ONNX model `name` in `repository` (version 1) whose output Y is its input X of shape `dims`
    (FP32 unless `elem_type`, an onnx.TensorProto type, says otherwise)."""
    import onnx
    from onnx import TensorProto, helper

    elem_type = TensorProto.FLOAT if elem_type is None else elem_type
    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", elem_type, dims)],
        [helper.make_tensor_value_info("Y", elem_type, dims)],
        initializer=[helper.make_tensor("unused", TensorProto.FLOAT, [1], [1.0])] if unused_initializer else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (repository / name / "1").mkdir(parents=True)
    onnx.save(model, str(repository / name / "1" / "model.onnx"))
    (repository / name / "config.pbtxt").write_text('backend: "onnxruntime"\n' + config)


def refusal(*args):
    """The server started on the bundled repository with `args`: it must stop at once with status 2 (a bad flag);
    its stderr, which says why."""
    r = subprocess.run([str(BINARY), "--model-repository", str(MODELS), *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    return r.stderr


def answers(url, status=200):
    """Whether `url` answers with `status` now (False while nothing listens there)."""
    try:
        return requests.get(url, timeout=1).status_code == status
    except requests.ConnectionError:
        return False


class Server:
    """A running inference-server process on loopback."""

    def __init__(self, repository, extra_args=(), tmp_path=None, grpc_port=None, http_port=None, preexec_fn=None,
                 binary=None, tls=None, env=None):
        """`tls`: the pki fixture's certificates, to serve both listeners over TLS with its server certificate
        (`http` is then an https URL and `ca` the CA to verify it with). `repository`: a directory or an s3://
        URL; `env`: variables added to the server's environment (AWS credentials)."""
        self.repository = repository if str(repository).startswith("s3://") else pathlib.Path(repository)
        self.ca = None
        if tls:
            crt, key = tls["server"]
            extra_args = [*extra_args, "--grpc-tls-cert", str(crt), "--grpc-tls-key", str(key),
                          "--http-tls-cert", str(crt), "--http-tls-key", str(key)]
            self.ca = str(tls["ca"])
        self.grpc_port, self.http_port = grpc_port or free_port(), http_port or free_port()
        self.metrics_port = free_port()
        self.log_path = pathlib.Path(tmp_path or "/tmp") / f"server-{self.http_port}.log"
        self.args = [str(binary or BINARY), "--model-repository", str(self.repository), "--host", "127.0.0.1",
                     "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
                     "--metrics-port", str(self.metrics_port), *extra_args]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
                                     env={**os.environ, **env} if env else None)
        self.http = f"{'https' if tls else 'http'}://127.0.0.1:{self.http_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.http + "/v2/health/ready", timeout=1, verify=self.ca or True).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_text()}")

    def metrics_text(self):
        """The server's Prometheus exposition, as scraped from --metrics-port."""
        return requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def log_text(self):
        if not self.log.closed:  # read after stop() too (a failed test's report)
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def log_lines(self):
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]

    def wait_for_log(self, predicate, timeout=10):
        """Log lines once one matches `predicate`: the access log line is written just after the reply."""
        deadline = time.time() + timeout
        while True:
            lines = self.log_lines()
            if any(predicate(l) for l in lines) or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server on a copy of the bundled repository, shared by the read-only tests."""
    repo = tmp_path_factory.mktemp("repo") / "models"
    shutil.copytree(MODELS, repo)
    s = Server(repo, tmp_path=tmp_path_factory.mktemp("log")).wait_ready()
    yield s
    rc = s.stop()
    assert rc == 0, f"server exited with {rc}:\n{s.log_text()[-4000:]}"


@pytest.fixture(scope="session")
def channel(server):
    """A gRPC channel to the shared server."""
    import grpc

    ch = grpc.insecure_channel(server.grpc_target)
    yield ch
    ch.close()


@pytest.fixture
def make_server(tmp_path):
    """Factory for servers with their own repository and flags; stopped at the end of the test."""
    started = []

    def make(repository, *args, ready=True, preexec_fn=None, env=None):
        s = Server(repository, args, tmp_path=tmp_path, preexec_fn=preexec_fn, env=env)
        started.append(s)
        return s.wait_ready() if ready else s

    yield make
    # Every server a test starts must exit 0 on SIGTERM (a crash at shutdown, e.g. under ASan, fails the
    # test that started it).
    codes = [(s.stop(), s) for s in started]
    for rc, s in codes:
        assert rc == 0, f"server exited with {rc}:\n{s.log_text()[-4000:]}"


@pytest.fixture(scope="session")
def reference():
    """onnxruntime (Python) sessions on the same model files: the reference for every prediction."""
    import onnxruntime as ort

    sessions = {}

    def run(model, x, version=1):
        key = (model, version)
        if key not in sessions:
            sessions[key] = ort.InferenceSession(str(MODELS / model / str(version) / "model.onnx"),
                                                 providers=["CPUExecutionProvider"])
        sess = sessions[key]
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))

    return run


@pytest.fixture(scope="session")
def datasets():
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

    return {
        "breast_cancer": load_breast_cancer(),
        "digits": load_digits(),
        "diabetes": load_diabetes(),
    }


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """Certificates made for this test run (tests/e2e/certs.py)."""
    from certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))
