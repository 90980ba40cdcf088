"""The kind-bucket overlay run without a cluster (no Kubernetes here): the three workloads it adds or changes are
started as processes from the rendered manifests, as a kubelet would start them. The store is the StatefulSet's
command (real SeaweedFS: `.deps/bin/weed`, built by scripts/install-deps.sh at the image's version), the seed is the
Job's init container and script with its environment (curl signing S3 requests), and the server is the Deployment's
arguments and environment with `$(VAR)` expanded (the real binary). Mounted Secrets, ConfigMaps and volumes become
local directories holding the same files; ports become free loopback ports. Then the flow docs/deploy.md shows:
every bundled model served from the bucket (checked against onnxruntime), version 2 uploaded with the publisher's
keys (boto3) served without a restart, and the servers' own keys refused when they try to write."""
import base64
import os
import pathlib
import re
import subprocess
import time

import numpy as np
import pytest
import requests
import yaml

from deploy_support import DEPLOY, ROOT, kustomize
from ports import free_port  # below the ephemeral range, never twice (tests/ports.py)

WEED = ROOT / ".deps" / "bin" / "weed"
SERVER = pathlib.Path(os.environ.get("INFERENCE_SERVER", ROOT / "build" / "inference-server")).resolve()
OVERLAY = DEPLOY / "k8s" / "overlays" / "kind-bucket"


def find(objects, kind, name, namespace):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
                and o["metadata"].get("namespace") == namespace)


def named(objects, kind, prefix, namespace):
    """A generated object (its name carries a content hash)."""
    return next(o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace
                and re.fullmatch(re.escape(prefix) + r"-[a-z0-9]{10}", o["metadata"]["name"]))


class Pod:
    """What a kubelet gives a container: its volumes as directories and its environment."""

    def __init__(self, objects, namespace, pod_spec, tmp, claims=()):
        self.objects, self.namespace, self.tmp = objects, namespace, tmp
        self.volumes = {}
        for volume in pod_spec.get("volumes", []) + [{"name": c, "emptyDir": {}} for c in claims]:
            path = tmp / volume["name"]
            path.mkdir(parents=True)
            source = volume.get("secret") or volume.get("configMap")
            if source:
                kind = "Secret" if "secret" in volume else "ConfigMap"
                name = source.get("secretName") or source.get("name")
                obj = find(objects, kind, name, namespace)
                for key, value in obj.get("data", {}).items():
                    (path / key).write_bytes(base64.b64decode(value) if kind == "Secret" else value.encode())
            else:
                assert "emptyDir" in volume, volume
            self.volumes[volume["name"]] = path

    def mounts(self, container):
        return {m["mountPath"]: self.volumes[m["name"]] for m in container.get("volumeMounts", [])}

    def env(self, container):
        env = {}
        for ref in container.get("envFrom", []):
            if "configMapRef" in ref:
                env |= find(self.objects, "ConfigMap", ref["configMapRef"]["name"], self.namespace)["data"]
            else:
                data = find(self.objects, "Secret", ref["secretRef"]["name"], self.namespace)["data"]
                env |= {k: base64.b64decode(v).decode() for k, v in data.items()}
        # The downward API's fields as a kubelet fills them for one pod of this namespace.
        fields = {"metadata.name": f"{container['name']}-0", "metadata.namespace": self.namespace,
                  "spec.nodeName": "kind-control-plane"}
        env |= {e["name"]: e["value"] if "value" in e else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
                for e in container.get("env", [])}
        return env

    def local(self, container, text):
        """`text` with the container's mount paths replaced by their local directories."""
        mounts = self.mounts(container)
        if not mounts:
            return text
        # One pass (a local directory may itself start with a mount path, such as /tmp), longest path first,
        # at the start of the value or of a flag's value.
        paths = "|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True))
        return re.sub(rf"(^|=)({paths})(?=/|$)", lambda m: m.group(1) + str(mounts[m.group(2)]), text)

    def command(self, container, env, overrides=None):
        """The container's command line with `$(VAR)` expanded and mount paths mapped to local directories;
        `overrides` replaces the arguments that start with each key."""
        args = []
        for arg in container.get("command", []) + container.get("args", []):
            arg = self.local(container, re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg))
            key = next((k for k in (overrides or {}) if arg.startswith(k)), None)
            args.append(arg if key is None else overrides[key])
        return args


def wait_for(check, what, timeout, proc=None, log=None):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if check():
                return
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout} s (last error: {last})" + (f"\n{log.read_text()[-3000:]}" if log else ""))


@pytest.fixture
def platform(tmp_path):
    assert WEED.exists(), "scripts/install-deps.sh test builds SeaweedFS's weed into .deps/bin"
    objects = [d for d in yaml.safe_load_all(kustomize(OVERLAY)) if d]
    procs = []

    def start(args, log, env=None):
        proc = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path, start_new_session=True)
        procs.append(proc)
        return proc

    yield objects, tmp_path, start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_store(objects, tmp, start):
    sts = find(objects, "StatefulSet", "model-store", "model-store")
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    pod = Pod(objects, "model-store", sts["spec"]["template"]["spec"], tmp / "store",
              claims=[t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]])
    s3_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "s3")
    assert f"-s3.port={s3_port}" in c["args"]
    # Loopback only, and free ports for every listener (gRPC ones too): later flags win in weed's parser.
    ports = {flag: free_port() for flag in ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                                            "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc"]}
    args = pod.command(c, {}) + ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"] + [f"-{k}={v}" for k, v in ports.items()]
    assert args[0] == "/usr/bin/weed"
    log = tmp / "store.log"
    proc = start([str(WEED)] + args[1:], log)
    url = f"http://127.0.0.1:{ports['s3.port']}"
    probe = c["readinessProbe"]["httpGet"]
    assert probe["port"] == "s3"
    wait_for(lambda: requests.get(url + probe["path"], timeout=1).status_code == 200, "the store's readiness", 60,
             proc, log)
    return url


def in_cluster_endpoint(objects, env):
    """The endpoint the manifests configure is the store's Service, by its cluster DNS name and port."""
    service = find(objects, "Service", "model-store", "model-store")
    (port,) = service["spec"]["ports"]
    assert env["AWS_ENDPOINT_URL"] == f"http://model-store.model-store.svc.cluster.local:{port['port']}"


def run_seed(objects, tmp, store_url, store_log):
    job = find(objects, "Job", "model-store-seed", "model-store")
    spec = job["spec"]["template"]["spec"]
    pod = Pod(objects, "model-store", spec, tmp / "seed")
    (init,) = spec["initContainers"]
    # The init container copies the image's /models (the Dockerfile's COPY of models/repository).
    assert "COPY models/repository /models" in (ROOT / "Dockerfile").read_text()
    init_args = pod.command(init, {})
    assert init_args[:3] == ["cp", "-R", "/models/."]
    subprocess.run(["cp", "-R", f"{ROOT / 'models' / 'repository'}/.", init_args[3]], check=True)
    (c,) = spec["containers"]
    env = pod.env(c)
    in_cluster_endpoint(objects, env)
    env = {k: pod.local(c, v) for k, v in env.items()} | {"AWS_ENDPOINT_URL": store_url, "PATH": os.environ["PATH"]}
    try:
        out = subprocess.run(pod.command(c, env), env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the seed Job ran over 120 s: {e.stdout} {e.stderr}\n{store_warnings(store_log)}") from e
    assert out.returncode == 0, out.stdout + out.stderr + store_warnings(store_log)
    return env, out.stdout


def store_warnings(log):
    """The store's warnings and errors (its log is mostly info lines), for a failure message."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line[:1] in "WEF"]
    return "the store's warnings and errors:\n" + "\n".join(lines[-30:])


def start_server(objects, tmp, start, store_url):
    dep = find(objects, "Deployment", "inference-server", "inference")
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    pod = Pod(objects, "inference", spec, tmp / "server")
    env = pod.env(c)
    in_cluster_endpoint(objects, env)
    http, grpc = free_port(), free_port()
    args = pod.command(c, env, {"--http-port=": f"--http-port={http}", "--grpc-port=": f"--grpc-port={grpc}",
                                "--metrics-port=": f"--metrics-port={free_port()}"})
    assert args[0] == "--model-repository=s3://models/repository", args[0]
    log = tmp / "server.log"
    proc = start([str(SERVER)] + args, log, env={**env, "AWS_ENDPOINT_URL": store_url, "PATH": os.environ["PATH"]})
    # The client trusts what Envoy trusts: the CA Secret.
    ca = tmp / "server" / "ca.crt"
    ca.write_bytes(base64.b64decode(find(objects, "Secret", "inference-server-ca", "inference")["data"]["ca.crt"]))
    base = f"https://127.0.0.1:{http}"
    token = (DEPLOY / "k8s" / "overlays" / "kind" / "generated" / "client.token").read_text().strip()
    session = requests.Session()
    session.verify, session.headers["Authorization"] = str(ca), f"Bearer {token}"
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the CA
    wait_for(lambda: session.get(base + "/readyz", timeout=2).status_code == 200, "the server's readiness", 60,
             proc, log)
    return base, session, log


def reference(model_dir, session, base):
    """The server's v2 REST prediction for random rows against onnxruntime's on the same model file."""
    import onnxruntime

    name = model_dir.name
    ort = onnxruntime.InferenceSession(str(model_dir / "1" / "model.onnx"))
    (inp,) = ort.get_inputs()
    rows = np.random.default_rng(7).random((3, inp.shape[1]), dtype=np.float32)
    expected = dict(zip([o.name for o in ort.get_outputs()], ort.run(None, {inp.name: rows})))
    body = {"inputs": [{"name": inp.name, "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}
    r = session.post(f"{base}/v2/models/{name}/infer", json=body, timeout=10)
    assert r.status_code == 200, (name, r.text)
    for out in r.json()["outputs"]:
        np.testing.assert_allclose(np.asarray(out["data"]).reshape(expected[out["name"]].shape),
                                   expected[out["name"]], rtol=1e-5, atol=1e-6, err_msg=name)


def s3_client(url, env):
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def test_the_bucket_overlay_serves_the_seeded_models_and_a_version_uploaded_later(platform):
    objects, tmp, start = platform
    store_url = start_store(objects, tmp, start)
    seed_env, seeded = run_seed(objects, tmp, store_url, tmp / "store.log")
    models = sorted(p.name for p in (ROOT / "models" / "repository").iterdir() if p.is_dir())
    assert all(f"seed: uploaded {m}" in seeded for m in models), seeded
    # A second seed run (restart.sh applies the Job again) leaves what is in the bucket alone.
    _, again = run_seed(objects, tmp / "again", store_url, tmp / "store.log")
    assert all(f"seed: {m} is in the bucket already" in again for m in models), again

    base, session, log = start_server(objects, tmp, start, store_url)
    for model in models:
        reference(ROOT / "models" / "repository" / model, session, base)
    assert "model version downloaded" in log.read_text()
    assert "Reporting anonymous cluster statistics" not in (tmp / "store.log").read_text()  # -master.telemetry=false

    # docs/deploy.md: upload version 2 with the publisher's keys; served at the next poll, no restart.
    publisher = s3_client(store_url, seed_env)
    model_file = ROOT / "models" / "repository" / "diabetes" / "1" / "model.onnx"
    publisher.upload_file(str(model_file), seed_env["MODEL_BUCKET"], f"{seed_env['MODEL_PREFIX']}/diabetes/2/model.onnx")
    wait_for(lambda: session.get(f"{base}/v2/models/diabetes/versions/2/ready", timeout=2).status_code == 200,
             "version 2 served", 30)
    # A new model half uploaded (no config.pbtxt yet) is known and not ready, and the pod stays ready.
    publisher.upload_file(str(model_file), seed_env["MODEL_BUCKET"], f"{seed_env['MODEL_PREFIX']}/half/1/model.onnx")
    admin = (DEPLOY / "k8s" / "overlays" / "kind" / "generated" / "admin.token").read_text().strip()

    def listed():
        index = session.post(f"{base}/v2/repository/index", headers={"Authorization": f"Bearer {admin}"}, timeout=2)
        return {m["name"]: m.get("state") for m in index.json()}.get("half") == "UNAVAILABLE"

    wait_for(listed, "the half-uploaded model seen", 30)
    assert session.get(f"{base}/readyz", timeout=2).status_code == 200
    # The servers' keys may read and list, never write.
    dep = find(objects, "Deployment", "inference-server", "inference")
    reader_env = Pod(objects, "inference", dep["spec"]["template"]["spec"], tmp / "reader").env(
        dep["spec"]["template"]["spec"]["containers"][0])
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3_client(store_url, reader_env).put_object(Bucket="models", Key="repository/x/config.pbtxt", Body=b"")
