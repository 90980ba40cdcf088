"""Models from object storage (--model-repository s3://...), against a real S3-compatible server started here:
moto's server mode with authentication on, so every request must carry a valid AWS Signature V4 made with an
access key the store issued (a wrong secret is refused by the store, not by us). Files go in with boto3."""
import threading
import time

import numpy as np
import pytest
import requests

from conftest import MODELS, Server, metric_sum, wait_for
from s3_store import Forwarder, Store, TlsFront


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    yield s
    s.stop()


def rows(datasets, model, n=16):
    return np.asarray(datasets[model].data[:n], dtype=np.float32)


def infer(server, model, x, version=None):
    meta = requests.get(f"{server.http}/v2/models/{model}", timeout=10).json()
    body = {"inputs": [{"name": meta["inputs"][0]["name"], "shape": list(x.shape), "datatype": "FP32",
                        "data": x.flatten().tolist()}]}
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    r = requests.post(server.http + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return {o["name"]: o["data"] for o in r.json()["outputs"]}


def test_every_bundled_model_serves_from_the_bucket_as_from_the_local_repository(store, make_server, datasets,
                                                                                 tmp_path):
    store.upload(MODELS, "repo")
    local = make_server(MODELS)
    cache = tmp_path / "cache"
    remote = make_server(store.url(), "--repository-cache-dir", str(cache), env=store.env())
    listed = {m["name"] for m in requests.post(remote.http + "/v2/repository/index", json={}, timeout=10).json()}
    assert listed == {p.name for p in MODELS.iterdir() if p.is_dir()}
    for model in sorted(listed):
        assert infer(remote, model, rows(datasets, model)) == infer(local, model, rows(datasets, model)), model
    # Each version was downloaded into a directory of this server's own under the cache directory.
    downloaded = sorted(p.relative_to(cache).parts[1:] for p in cache.rglob("model.onnx"))
    assert downloaded == sorted((m, "1", "model.onnx") for m in listed)
    lines = remote.log_lines()
    assert sum(l["msg"] == "model version downloaded" for l in lines) == len(listed)
    assert store.secret not in remote.log_text(), "the secret reached the log"
    remote.stop()
    assert not list(cache.rglob("model.onnx")), "the downloads outlived the server"


@pytest.mark.parametrize("case", ["wrong secret", "missing bucket", "no credentials"])
def test_a_repository_the_store_refuses_stops_the_server_naming_it(store, tmp_path, case):
    store.upload(MODELS / "breast_cancer", "repo/breast_cancer")
    url = store.url(bucket="nosuchbucket") if case == "missing bucket" else store.url()
    env = store.env(secret="wrong" if case == "wrong secret" else None)
    if case == "no credentials":
        env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    server = Server(url, tmp_path=tmp_path, env=env)
    try:
        assert server.proc.wait(timeout=30) == 1
        lines, text = server.log_lines(), server.log_text()
    finally:
        server.stop()
    error = next(l for l in lines if l["msg"] == "cannot open the model repository")
    # Unsigned requests: real S3 answers 403 AccessDenied, moto with authentication on a 500; either way the
    # store's answer is named.
    expected = {"wrong secret": "HTTP 403 SignatureDoesNotMatch", "missing bucket": "HTTP 404 NoSuchBucket",
                "no credentials": "HTTP "}[case]
    assert url in error["reason"] and expected in error["reason"], error
    assert ("'nosuchbucket'" if case == "missing bucket" else "'models'") in error["reason"], error
    assert "wrong" not in error["reason"] and store.secret not in text


def test_a_new_version_is_served_after_a_poll_and_a_half_upload_is_not(store, make_server, datasets, tmp_path):
    model = MODELS / "breast_cancer"
    store.upload(model, "repo/breast_cancer")
    server = make_server(store.url(), "--model-control-mode", "poll", "--repository-poll-ms", "300",
                         "--repository-cache-dir", str(tmp_path / "cache"), env=store.env())
    before = infer(server, "breast_cancer", rows(datasets, "breast_cancer"))
    # Version 2 (the same model file) uploaded under load: served within a few polls, version 1 retired, and not
    # one request of the load fails meanwhile.
    outcomes, stop = [], threading.Event()
    name = requests.get(f"{server.http}/v2/models/breast_cancer", timeout=5).json()["inputs"][0]["name"]

    def load():
        with requests.Session() as session:
            while not stop.is_set():
                x = rows(datasets, "breast_cancer", 4)
                body = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                    "data": x.flatten().tolist()}]}
                r = session.post(f"{server.http}/v2/models/breast_cancer/infer", json=body, timeout=10)
                outcomes.append(r.status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    store.s3.upload_file(str(model / "1" / "model.onnx"), "models", "repo/breast_cancer/2/model.onnx")
    wait_for(lambda: requests.get(f"{server.http}/v2/models/breast_cancer/versions/1/ready", timeout=5).status_code
             != 200, timeout=20, what="version 2 served and version 1 retired")
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join()
    assert len(outcomes) > 50 and set(outcomes) == {200}, f"{len(outcomes)} requests: {sorted(set(outcomes))}"
    assert requests.get(f"{server.http}/v2/models/breast_cancer/versions/2/ready", timeout=5).status_code == 200
    assert infer(server, "breast_cancer", rows(datasets, "breast_cancer"), version=2) == before
    # Models half-uploaded are not served; once complete they are: diabetes without its config.pbtxt yet, digits
    # with its config but not the label file the config names.
    store.s3.upload_file(str(MODELS / "diabetes" / "1" / "model.onnx"), "models", "repo/diabetes/1/model.onnx")
    for name in ("config.pbtxt", "1/model.onnx"):
        store.s3.upload_file(str(MODELS / "digits" / name), "models", f"repo/digits/{name}")
    time.sleep(1.5)
    for model in ("diabetes", "digits"):
        assert requests.get(f"{server.http}/v2/models/{model}/ready", timeout=5).status_code != 200, model
    store.s3.upload_file(str(MODELS / "diabetes" / "config.pbtxt"), "models", "repo/diabetes/config.pbtxt")
    store.s3.upload_file(str(MODELS / "digits" / "labels.txt"), "models", "repo/digits/labels.txt")
    for model in ("diabetes", "digits"):
        wait_for(lambda: requests.get(f"{server.http}/v2/models/{model}/ready", timeout=5).status_code == 200,
                 timeout=20, what=f"{model} ready once complete")
    # Deleting version 2 unloads it; version 1 keeps serving.
    store.s3.delete_object(Bucket="models", Key="repo/breast_cancer/2/model.onnx")
    wait_for(lambda: requests.get(f"{server.http}/v2/models/breast_cancer/versions/2/ready", timeout=5).status_code
             != 200, timeout=20, what="version 2 gone")
    assert infer(server, "breast_cancer", rows(datasets, "breast_cancer"), version=1) == before


def test_keys_that_leave_their_directory_and_files_over_the_bound_are_refused(store, make_server, tmp_path):
    model = MODELS / "breast_cancer"
    store.upload(model, "repo/breast_cancer")
    onnx = (model / "1" / "model.onnx").read_bytes()
    store.s3.put_object(Bucket="models", Key="repo/breast_cancer/2/model.onnx", Body=onnx)
    store.s3.put_object(Bucket="models", Key="repo/breast_cancer/2/../../../escaped", Body=b"x")
    store.s3.put_object(Bucket="models", Key="repo/breast_cancer/3/model.onnx", Body=onnx + b"\0" * 4096)
    cache = tmp_path / "cache"
    server = make_server(store.url(), "--repository-cache-dir", str(cache), "--repository-max-file-bytes",
                         str(len(onnx) + 100), "--log-level", "info", env=store.env(), ready=False)
    wait_for(lambda: any(l["msg"] == "model state changed" and l.get("version") == 3 and l.get("state") == "FAILED"
                         for l in server.log_lines()), timeout=30, what="version 3 refused")
    lines = server.log_lines()
    escaped = [l for l in lines if l["msg"] == "model version not served: a key would leave its directory"]
    assert escaped and escaped[0]["version"] == 2 and ".." in escaped[0]["key"], lines
    failed = next(l for l in lines if l["msg"] == "model state changed" and l.get("version") == 3
                  and l.get("state") == "FAILED")
    assert "over --repository-max-file-bytes" in failed["reason"], failed
    assert not list(cache.rglob("escaped")) and not (cache.exists() and any(
        p.stat().st_size > len(onnx) for p in cache.rglob("*") if p.is_file())), "a refused file reached the disk"


def test_a_listing_of_several_pages_is_read_whole(store, make_server, tmp_path):
    """1,050 files in one version: the store answers in pages of 1,000 keys; the version's fingerprint and its
    download cover every file."""
    model = MODELS / "breast_cancer"
    store.upload(model, "repo/breast_cancer")
    for i in range(1050):
        store.s3.put_object(Bucket="models", Key=f"repo/breast_cancer/1/extra/{i:04d}.txt", Body=b"x")
    cache = tmp_path / "cache"
    server = make_server(store.url(), "--repository-cache-dir", str(cache), env=store.env())
    assert requests.get(f"{server.http}/v2/models/breast_cancer/ready", timeout=5).status_code == 200
    assert len(list(cache.rglob("extra/*.txt"))) == 1050
    downloaded = next(l for l in server.log_lines() if l["msg"] == "model version downloaded")
    assert downloaded["files"] == 1051


def test_an_unreachable_store_keeps_what_is_served_backs_off_and_recovers(store, make_server, datasets, tmp_path):
    model = MODELS / "breast_cancer"
    store.upload(model, "repo/breast_cancer")
    forwarder = Forwarder(store.port)
    url = f"s3://http://127.0.0.1:{forwarder.port}/models/repo"
    server = make_server(url, "--model-control-mode", "poll", "--repository-poll-ms", "200",
                         "--repository-cache-dir", str(tmp_path / "cache"), env=store.env())
    before = infer(server, "breast_cancer", rows(datasets, "breast_cancer"))
    forwarder.stop()
    wait_for(lambda: metric_sum(server.metrics_text(), "inference_repository_poll_errors_total",
                                reason="unavailable") >= 3, timeout=30, what="failed polls counted")
    assert infer(server, "breast_cancer", rows(datasets, "breast_cancer")) == before
    assert requests.get(server.http + "/v2/health/ready", timeout=5).status_code == 200
    failures = [l for l in server.log_lines() if l["msg"] == "cannot read model repository"]
    assert [l["next_poll_ms"] for l in failures[:3]] == [400, 800, 1600], failures  # backing off
    # While it is away, version 2 is uploaded; once it is back, the next poll serves it.
    store.s3.upload_file(str(model / "1" / "model.onnx"), "models", "repo/breast_cancer/2/model.onnx")
    forwarder.start()
    wait_for(lambda: requests.get(f"{server.http}/v2/models/breast_cancer/versions/2/ready", timeout=5).status_code
             == 200, timeout=30, what="version 2 served after the store came back")
    assert any(l["msg"] == "model repository readable again" for l in server.log_lines())
    downloaded = metric_sum(server.metrics_text(), "inference_repository_download_bytes_total")
    assert downloaded == 2 * (model / "1" / "model.onnx").stat().st_size  # version 1 at startup, then 2
    forwarder.stop()


def test_a_download_cut_off_midway_is_fetched_again_once_the_store_is_back(store, make_server, datasets, tmp_path):
    """The store goes away while a version downloads (64 MiB through a forwarder throttled to 16 MiB/s): the
    version fails with the reason, its partial files are removed, what was served goes on, and once the store is
    back the next poll downloads it again (a transient failure is not remembered as the version's verdict)."""
    import os

    model = MODELS / "breast_cancer"
    store.upload(model, "repo/breast_cancer")
    forwarder = Forwarder(store.port, rate=16 << 20)
    cache = tmp_path / "cache"
    server = make_server(f"s3://http://127.0.0.1:{forwarder.port}/models/repo", "--model-control-mode", "poll",
                         "--repository-poll-ms", "200", "--repository-cache-dir", str(cache), env=store.env())
    before = infer(server, "breast_cancer", rows(datasets, "breast_cancer"))
    pad = tmp_path / "pad.bin"
    pad.write_bytes(os.urandom(64 << 20))
    store.s3.upload_file(str(pad), "models", "repo/breast_cancer/2/pad.bin")
    store.s3.upload_file(str(model / "1" / "model.onnx"), "models", "repo/breast_cancer/2/model.onnx")

    def big_files():
        return [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size > (1 << 20)]

    wait_for(lambda: big_files(), timeout=30, what="version 2 downloading")
    forwarder.stop()

    def state_of_2():
        index = requests.post(server.http + "/v2/repository/index", json={}, timeout=5).json()
        return next((m for m in index if m["name"] == "breast_cancer" and m.get("version") == "2"), {})

    wait_for(lambda: state_of_2().get("reason"), timeout=30, what="version 2 failed")
    assert "tried again at the next poll" in state_of_2()["reason"], state_of_2()
    assert not big_files(), "the partial download was left on disk"
    assert infer(server, "breast_cancer", rows(datasets, "breast_cancer"), version=1) == before
    assert requests.get(server.http + "/v2/health/ready", timeout=5).status_code == 200
    forwarder.start()
    wait_for(lambda: requests.get(f"{server.http}/v2/models/breast_cancer/versions/2/ready", timeout=5).status_code
             == 200, timeout=45, what="version 2 served once the store is back")
    forwarder.stop()


def test_downloads_of_a_killed_server_are_removed_by_the_next_one(store, make_server, datasets, tmp_path):
    """SIGKILL leaves a server's downloads behind (nothing runs to remove them); the next server on the same cache
    directory (a restarted container keeps its emptyDir) removes them, logs it, and serves."""
    import signal

    store.upload(MODELS / "breast_cancer", "repo/breast_cancer")
    cache = tmp_path / "cache"
    first = Server(store.url(), ["--repository-cache-dir", str(cache)], tmp_path=tmp_path, env=store.env())
    try:
        first.wait_ready()
        x = rows(datasets, "breast_cancer")
        before = infer(first, "breast_cancer", x)
        (left,) = [p for p in cache.iterdir() if p.is_dir()]
        first.proc.send_signal(signal.SIGKILL)
        assert first.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        first.stop()
    assert (left / "breast_cancer" / "1" / "model.onnx").exists()
    second = make_server(store.url(), "--repository-cache-dir", str(cache), env=store.env())
    assert not left.exists(), "the killed server's downloads are still there"
    removed = [l for l in second.log_lines() if l["msg"] == "removed the downloads of a server that is gone"]
    assert [l["dir"] for l in removed] == [str(left)], removed
    assert infer(second, "breast_cancer", x) == before
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1


def test_local_and_s3_repositories_together_first_one_wins(store, make_server, datasets, tmp_path):
    """Triton's repeated --model-repository: a model is served from the first repository that lists it."""
    import shutil

    local = tmp_path / "local"
    for model in ("breast_cancer", "diabetes"):
        shutil.copytree(MODELS / model, local / model)
    store.upload(MODELS / "digits", "repo/digits")
    store.upload(MODELS / "diabetes", "repo/diabetes")
    server = make_server(local, "--model-repository", store.url(), "--repository-cache-dir", str(tmp_path / "cache"),
                         env=store.env())
    for model in ("breast_cancer", "digits", "diabetes"):
        assert requests.get(f"{server.http}/v2/models/{model}/ready", timeout=5).status_code == 200, model
    assert infer(server, "digits", rows(datasets, "digits"))
    warning = next(l for l in server.log_lines() if l["msg"] == "model in several repositories: served from the first")
    assert warning["model"] == "diabetes" and warning["served_from"] == str(local), warning
    downloads = [l["model"] for l in server.log_lines() if l["msg"] == "model version downloaded"]
    assert downloads == ["digits"], "diabetes was downloaded although the local repository has it"


def test_a_store_over_https_is_verified_against_the_configured_ca(store, make_server, pki, datasets, tmp_path):
    """TLS to the store is verified: a certificate of an unknown CA stops the server naming the failure; the CA
    given with --s3-ca-file, or AWS_CA_BUNDLE, is trusted."""
    store.upload(MODELS / "breast_cancer", "repo/breast_cancer")
    front = TlsFront(tmp_path / "tls-front", store.port, pki["server"])
    try:
        system_cas = dict(store.env(), AWS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt")
        refused = Server(front.url(), tmp_path=tmp_path, env=system_cas)
        try:
            assert refused.proc.wait(timeout=30) == 1
            error = next(l for l in refused.log_lines() if l["msg"] == "cannot open the model repository")
        finally:
            refused.stop()
        assert front.url() in error["reason"] and "certificate" in error["reason"].lower(), error

        local = make_server(MODELS)
        x = rows(datasets, "breast_cancer")
        by_flag = make_server(front.url(), "--s3-ca-file", str(pki["ca"]),
                              "--repository-cache-dir", str(tmp_path / "c1"), env=system_cas)
        assert infer(by_flag, "breast_cancer", x) == infer(local, "breast_cancer", x)
        by_env = make_server(front.url(), "--repository-cache-dir", str(tmp_path / "c2"),
                             env=dict(store.env(), AWS_CA_BUNDLE=str(pki["ca"])))
        assert infer(by_env, "breast_cancer", x) == infer(local, "breast_cancer", x)
    finally:
        front.stop()
