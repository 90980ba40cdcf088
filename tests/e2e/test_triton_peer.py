"""Both directions of the Triton drop-in (issue #11): the bundled repository, exactly as committed, loads in real
NVIDIA Triton (2.51 with its own C++ ONNX Runtime backend on the same ONNX Runtime library: the benchmark peer
in ../shared/peers/triton-ort) and both servers give the same outputs for every row of each bundled dataset,
and the same model configuration where the schema says the same thing.

Run by `make test-triton` only (tests/e2e/conftest.py leaves it out otherwise): CI runs it where the peer is
present; Triton with its ONNX Runtime backend cannot be installed from a registry here."""
import os
import pathlib
import shutil
import subprocess
import time

import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from conftest import MODELS, ROOT, Server, free_port

PEER = pathlib.Path(os.environ.get("TRITON_PEER", ROOT.parent / "shared" / "peers" / "triton-ort"))


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    repo = tmp_path_factory.mktemp("triton") / "models"
    shutil.copytree(MODELS, repo)
    return repo


@pytest.fixture(scope="module")
def triton(repository, tmp_path_factory):
    assert (PEER / "start-triton.sh").is_file(), f"no Triton peer at {PEER} (set TRITON_PEER)"
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    log = open(tmp_path_factory.mktemp("triton-log") / "triton.log", "wb")
    proc = subprocess.Popen([str(PEER / "start-triton.sh"), str(repository), str(http), str(grpc_port), str(metrics)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"
    deadline = time.time() + 300  # the first start may create the peer's venv
    while time.time() < deadline:
        assert proc.poll() is None, pathlib.Path(log.name).read_text()[-4000:]
        try:
            if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("Triton not ready:\n" + pathlib.Path(log.name).read_text()[-4000:])
    yield {"http": f"127.0.0.1:{http}", "grpc": f"127.0.0.1:{grpc_port}"}
    proc.terminate()
    proc.wait(timeout=60)
    log.close()


@pytest.fixture(scope="module")
def ours(repository, tmp_path_factory):
    s = Server(repository, tmp_path=tmp_path_factory.mktemp("ours-log")).wait_ready()
    yield {"http": s.http.removeprefix("http://"), "grpc": s.grpc_target}
    assert s.stop() == 0


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_the_bundled_repository_gives_the_same_outputs_in_both_servers(model, triton, ours, datasets):
    x = datasets[model].data.astype(np.float32)
    config = thttp.InferenceServerClient(ours["http"]).get_model_config(model)
    declared = [o["name"] for o in config["output"] if o["label_filename"] or o["name"] in
                [p["string_value"] for k, p in config["parameters"].items() if k == "scores_output"]]
    answers = {}
    for name, urls in (("triton", triton), ("ours", ours)):
        client = thttp.InferenceServerClient(urls["http"])
        parts = []
        for start in range(0, len(x), config["max_batch_size"]):
            rows = x[start:start + config["max_batch_size"]]
            inp = thttp.InferInput("X", list(rows.shape), "FP32")
            inp.set_data_from_numpy(rows, binary_data=True)
            result = client.infer(model, [inp], outputs=[thttp.InferRequestedOutput(o) for o in declared])
            parts.append({o: result.as_numpy(o) for o in declared})
        answers[name] = {o: np.concatenate([p[o] for p in parts]) for o in declared}
    assert declared and len(answers["ours"][declared[0]]) == len(x)
    for o in declared:
        np.testing.assert_allclose(answers["ours"][o], answers["triton"][o], rtol=1e-6, atol=1e-7, err_msg=o)


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_both_servers_describe_the_model_configuration_alike(model, triton, ours):
    theirs = tgrpc.InferenceServerClient(triton["grpc"]).get_model_config(model).config
    mine = tgrpc.InferenceServerClient(ours["grpc"]).get_model_config(model).config
    assert mine.name == theirs.name and mine.max_batch_size == theirs.max_batch_size
    assert mine.platform == theirs.platform and mine.backend == theirs.backend
    assert [(i.name, i.data_type, list(i.dims)) for i in mine.input] == \
        [(i.name, i.data_type, list(i.dims)) for i in theirs.input]
    for out in theirs.output:  # Triton lists the declared outputs; we also add the model's others
        (match,) = [o for o in mine.output if o.name == out.name]
        assert (match.data_type, list(match.dims), match.label_filename) == \
            (out.data_type, list(out.dims), out.label_filename)
    assert sum(g.count for g in mine.instance_group) == sum(g.count for g in theirs.instance_group)
