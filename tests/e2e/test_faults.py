"""Faults injected end to end against the real binary (docs/reliability.md#faults): model files truncated,
corrupted or deleted while they serve, a reload to a broken version, the repository directory removed and put
back, SIGKILL under load and a restart, a full disk while a version downloads from object storage. In each, what
was served goes on being served with the same predictions, the fault is said (state, reason, log, metric), and
the server neither crashes nor stops being ready."""
import resource
import shutil
import signal
import threading

import numpy as np
import pytest
import requests

from conftest import MODELS, Server, metric_sum, wait_for
from s3_store import Store


def predict(server, x, version=None):
    body = {"inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    path = "/v2/models/diabetes" + (f"/versions/{version}" if version else "") + "/infer"
    r = requests.post(server.http + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["outputs"][0]["data"]


@pytest.fixture
def rows(datasets):
    return np.asarray(datasets["diabetes"].data[:8], dtype=np.float32)


@pytest.fixture
def repo(tmp_path):
    shutil.copytree(MODELS / "diabetes", tmp_path / "repo" / "diabetes")
    return tmp_path / "repo"


def polling(make_server, repo, *args, **kwargs):
    return make_server(repo, "--model-control-mode", "poll", "--repository-poll-ms", "200", *args, **kwargs)


def logged(server, msg):
    return [l for l in server.log_lines() if l["msg"] == msg]


@pytest.mark.parametrize("fault", ["truncated", "corrupted", "deleted"])
def test_a_model_file_broken_while_it_serves_leaves_the_loaded_version_serving(repo, make_server, rows, fault):
    server = polling(make_server, repo)
    before = predict(server, rows)
    model = repo / "diabetes" / "1" / "model.onnx"
    data = model.read_bytes()
    if fault == "truncated":
        model.write_bytes(data[: len(data) // 2])
    elif fault == "corrupted":  # the same size, its middle overwritten
        middle = len(data) // 2
        model.write_bytes(data[:middle] + bytes(256) + data[middle + 256:])
    else:
        model.unlink()
    wait_for(lambda: logged(server, "model reload failed"), timeout=20, what="the poll to try the changed file")
    assert logged(server, "model reload failed")[0]["version"] == 1
    for _ in range(3):
        assert predict(server, rows) == before
    assert requests.get(server.http + "/v2/health/ready", timeout=5).status_code == 200
    assert requests.get(server.http + "/v2/models/diabetes/versions/1/ready", timeout=5).status_code == 200
    # The file put back as it was: reloaded, and still the same answers.
    model.write_bytes(data)
    wait_for(lambda: len([l for l in server.log_lines() if l["msg"] == "model version loaded"]) >= 2, timeout=20,
             what="the repaired file loaded")
    assert predict(server, rows) == before


def test_a_reload_to_a_broken_version_keeps_the_old_one(repo, make_server, rows):
    server = polling(make_server, repo)
    before = predict(server, rows)
    (repo / "diabetes" / "2").mkdir()
    (repo / "diabetes" / "2" / "model.onnx").write_bytes(b"not an onnx model")
    wait_for(lambda: any(l.get("version") == 2 and l.get("state") == "FAILED"
                         for l in logged(server, "model state changed")), timeout=20, what="version 2 failed")
    index = requests.post(server.http + "/v2/repository/index", json={}, timeout=5).json()
    v2 = next(m for m in index if m.get("version") == "2")
    assert v2["reason"], v2
    assert predict(server, rows) == before  # the newest ready version: 1
    assert requests.get(server.http + "/v2/models/diabetes/versions/2/ready", timeout=5).status_code != 200
    assert requests.get(server.http + "/v2/health/ready", timeout=5).status_code == 200


def test_the_repository_directory_removed_and_put_back(repo, make_server, rows):
    server = polling(make_server, repo)
    before = predict(server, rows)
    away = repo.with_name("away")
    repo.rename(away)
    wait_for(lambda: metric_sum(server.metrics_text(), "inference_repository_poll_errors_total") >= 2, timeout=20,
             what="failed polls counted")
    assert predict(server, rows) == before
    assert requests.get(server.http + "/v2/health/ready", timeout=5).status_code == 200
    assert logged(server, "cannot read model repository")
    away.rename(repo)
    wait_for(lambda: logged(server, "model repository readable again"), timeout=60, what="the repository back")
    assert predict(server, rows) == before


def test_sigkill_under_load_then_a_restart_serves_again(repo, make_server, rows, tmp_path):
    first = Server(repo, [], tmp_path=tmp_path)
    first.wait_ready()
    before = predict(first, rows)
    stop, answered = threading.Event(), []

    def load():
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    s.post(first.http + "/v2/models/diabetes/infer", timeout=5, json={"inputs": [
                        {"name": "X", "shape": [1, 10], "datatype": "FP32", "data": rows[0].tolist()}]})
                    answered.append(1)
                except requests.RequestException:
                    pass

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(answered) > 50, timeout=20, what="load running")
    first.proc.send_signal(signal.SIGKILL)
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join()
    first.stop()
    second = make_server(repo)
    assert predict(second, rows) == before
    assert requests.get(second.http + "/v2/health/ready", timeout=5).status_code == 200


def test_a_full_disk_while_downloading_fails_the_version_and_serves_the_rest(make_server, rows, tmp_path):
    """The server may write no file over 16 MiB (RLIMIT_FSIZE, SIGXFSZ ignored: writes past it fail as on a full
    disk); version 2 carries a 32 MiB file. It fails with the write error, is tried again at each poll, and
    version 1 goes on serving."""
    store = Store(tmp_path)
    try:
        store.upload(MODELS / "diabetes", "repo/diabetes")

        def small_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))

        server = make_server(store.url(), "--model-control-mode", "poll", "--repository-poll-ms", "500",
                             "--repository-cache-dir", str(tmp_path / "cache"), env=store.env(),
                             preexec_fn=small_disk)
        before = predict(server, rows)
        pad = tmp_path / "pad.bin"
        pad.write_bytes(bytes(32 << 20))
        store.s3.upload_file(str(pad), "models", "repo/diabetes/2/pad.bin")
        store.s3.upload_file(str(MODELS / "diabetes" / "1" / "model.onnx"), "models", "repo/diabetes/2/model.onnx")

        def failed():
            return [l for l in logged(server, "model state changed")
                    if l.get("version") == 2 and l.get("state") == "FAILED"]

        wait_for(lambda: len(failed()) >= 2, timeout=30, what="version 2 failing, then failing again at a later poll")
        assert "cannot write" in failed()[0]["reason"] and "tried again at the next poll" in failed()[0]["reason"]
        assert predict(server, rows) == before
        assert requests.get(server.http + "/v2/health/ready", timeout=5).status_code == 200
    finally:
        store.stop()
