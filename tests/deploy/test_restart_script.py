"""A test of scripts/restart.sh's logic, not of a cluster: docker, kind, kubectl and curl are recording
stand-ins on PATH (no Docker engine or cluster exists here). `kubectl kustomize` is passed to the real kubectl,
so the overlay the script applies is really rendered."""
import json
import os
import pathlib
import shutil
import stat
import subprocess

import pytest

from deploy_support import ROOT, kustomize_command, place_descriptor

STANDIN = """#!/bin/sh
# Recording stand-in for {name}.
echo "{name} $*" >> "$STANDIN_LOG"
state="$STANDIN_STATE"
case "{name}:$1" in
  docker:info) exit 0 ;;
  docker:image) echo "sha256:0123456789abcdef0123456789abcdef" ;;
  docker:build) case "$*" in *--output*) echo "unknown flag: --output (no buildx)" >&2; exit 125 ;; esac ;;
  docker:create) echo "c0ffee" ;;
  kind:version) echo "kind ${{STANDIN_KIND_VERSION:-v0.31.0}} go1.25.5 linux/amd64" ;;
  kind:get) [ -f "$state/cluster" ] && cat "$state/cluster"; exit 0 ;;
  kind:create) echo "$4" > "$state/cluster" ;;
  kind:delete) rm -f "$state/cluster" ;;
  kubectl:kustomize) {kustomize} ;;
  kubectl:apply) [ "$*" = "apply --prune -l app.kubernetes.io/part-of=inference-platform -f -" ] && cat > "$state/applied.yaml" ;;
esac
exit 0
"""


@pytest.fixture
def standins(tmp_path):
    bindir, state = tmp_path / "bin", tmp_path / "state"
    bindir.mkdir()
    state.mkdir()
    for name in ["docker", "kind", "kubectl", "curl", "sleep"]:
        path = bindir / name
        path.write_text(STANDIN.format(name=name, kustomize=kustomize_command()))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    place_descriptor()  # the script's descriptor export writes it in a real run
    log = tmp_path / "calls.log"
    base_path = "/usr/bin:/bin"
    env = {"PATH": f"{bindir}:{base_path}", "STANDIN_LOG": str(log), "STANDIN_STATE": str(state),
           "HOME": str(tmp_path)}

    def run(*args, path=None):
        e = dict(env, PATH=path or env["PATH"])
        log.write_text("")
        out = subprocess.run(["sh", str(ROOT / "scripts" / "restart.sh"), *args], env=e, capture_output=True,
                             text=True, timeout=120)
        return out, log.read_text().splitlines()

    run.state, run.bindir, run.base_path = state, bindir, base_path
    return run


def test_first_run_creates_the_cluster_and_deploys_everything(standins):
    out, calls = standins()
    assert out.returncode == 0, out.stderr
    assert any(c.startswith("kind create cluster --name inference-platform --config") for c in calls)
    assert any("ingress-nginx/controller-v1.15.1/deploy/static/provider/kind/deploy.yaml" in c for c in calls)
    assert any("metrics-server/releases/download/v0.8.0/components.yaml" in c for c in calls)
    assert any(c.startswith("docker build -t inference-server:dev") for c in calls)
    # Without buildx (the stand-in docker refuses `build --output`, as the legacy builder does): the
    # descriptor comes out of the built image with create + cp.
    assert "docker create inference-server:0123456789ab" in calls
    assert "docker cp c0ffee:/usr/local/share/inference-server/inference_descriptor.pb" in " ".join(calls)
    assert "docker rm c0ffee" in calls
    assert "kind load docker-image inference-server:0123456789ab --name inference-platform" in calls
    applied = (standins.state / "applied.yaml").read_text()
    assert "image: inference-server:0123456789ab" in applied and "image: inference-server:dev" not in applied
    assert "kind: Ingress" in applied and "nodePort: 30090" in applied
    webhook_ready = next(i for i, c in enumerate(calls) if "wait --for=condition=complete" in c
                         and "job/ingress-nginx-admission-create" in c and "job/ingress-nginx-admission-patch" in c)
    first_apply = next(i for i, c in enumerate(calls)
                       if c == "kubectl apply --prune -l app.kubernetes.io/part-of=inference-platform -f -")
    assert webhook_ready < first_apply, "the Ingress is applied before ingress-nginx's admission webhook is ready"
    # The ingress controller's spans go to the trace store the monitoring overlay runs, on the port its Service
    # and NetworkPolicy open (test_manifests.py checks those).
    (otel,) = [c for c in calls if c.startswith("kubectl -n ingress-nginx patch configmap ingress-nginx-controller")]
    data = json.loads(otel.split(" -p ", 1)[1])["data"]
    assert data["enable-opentelemetry"] == "true" and data["opentelemetry-trust-incoming-span"] == "true"
    assert (data["otlp-collector-host"], data["otlp-collector-port"]) == ("jaeger.monitoring.svc.cluster.local", "4317")
    for target in ["deployment/inference-server", "deployment/envoy", "statefulset/loki", "daemonset/alloy",
                   "deployment/jaeger"]:
        assert any(c.startswith("kubectl -n") and f"rollout status {target}" in c for c in calls), target
    smoke = [c for c in calls if c.startswith("curl")]
    assert any("http://localhost/v1/infer" in c for c in smoke) and any("localhost:30090" in c for c in smoke)
    assert "http://localhost:30090/" in out.stdout


def test_second_run_creates_nothing_and_succeeds(standins):
    assert standins()[0].returncode == 0
    out, calls = standins()
    assert out.returncode == 0, out.stderr
    assert not any(c.startswith("kind create") for c in calls)
    assert "cluster inference-platform exists" in out.stdout


def test_down_deletes_the_cluster_and_is_idempotent(standins):
    standins()
    out, calls = standins("--down")
    assert out.returncode == 0 and "kind delete cluster --name inference-platform" in calls
    out, calls = standins("--down")
    assert out.returncode == 0 and not any(c.startswith("kind delete") for c in calls)


@pytest.mark.parametrize("missing", ["docker", "kind", "kubectl"])
def test_a_missing_prerequisite_stops_with_a_clear_message(standins, tmp_path, missing):
    reduced = tmp_path / "reduced"
    reduced.mkdir()
    for tool in standins.bindir.iterdir():
        if tool.name != missing:
            os.symlink(tool, reduced / tool.name)
    # Only the stand-ins and the basic utilities, so a real docker/kind/kubectl cannot be found instead.
    utils = tmp_path / "utils"
    utils.mkdir()
    for tool in ["sh", "dirname", "cat", "sed", "grep", "printf", "cut", "mkdir"]:
        real = shutil.which(tool)
        if real:
            os.symlink(real, utils / tool)
    out, calls = standins(path=f"{reduced}:{utils}")
    assert out.returncode != 0
    assert f"{missing} is required but not installed" in out.stderr
    assert not any(c.startswith("kind create") for c in calls)


def test_a_stopped_docker_engine_is_reported(standins):
    script = standins.bindir / "docker"
    script.write_text(script.read_text().replace("docker:info) exit 0", "docker:info) exit 1"))
    out, _ = standins()
    assert out.returncode != 0 and "engine is not running" in out.stderr


def test_a_kind_too_old_for_the_node_image_is_reported(standins, monkeypatch):
    script = standins.bindir / "kind"
    script.write_text(script.read_text().replace("${STANDIN_KIND_VERSION:-v0.31.0}", "v0.27.0"))
    out, calls = standins()
    assert out.returncode != 0
    assert "kind 0.27.0 is too old" in out.stderr and "v0.31.0 or newer" in out.stderr
    assert not any(c.startswith("kind create") for c in calls)


def test_unknown_arguments_are_refused(standins):
    out, _ = standins("--bogus")
    assert out.returncode != 0 and "unknown argument" in out.stderr


def test_bucket_run_deploys_the_store_seeds_it_and_waits_for_the_seed_before_the_servers(standins):
    out, calls = standins("--bucket")
    assert out.returncode == 0, out.stderr
    applied = (standins.state / "applied.yaml").read_text()
    assert "name: model-store" in applied and "kind: StatefulSet" in applied
    assert "--model-repository=s3://$(MODEL_BUCKET)/$(MODEL_PREFIX)" in applied
    assert "image: inference-server:0123456789ab" in applied and "image: inference-server:dev" not in applied
    assert (ROOT / "deploy" / "k8s" / "overlays" / "kind-bucket" / "generated" / "admin.env").exists()
    apply = calls.index("kubectl apply --prune -l app.kubernetes.io/part-of=inference-platform -f -")
    delete = calls.index("kubectl -n model-store delete job model-store-seed --ignore-not-found")
    seeded = calls.index("kubectl -n model-store wait --for=condition=complete job/model-store-seed --timeout=300s")
    servers = next(i for i, c in enumerate(calls) if "rollout status deployment/inference-server" in c)
    assert delete < apply < seeded < servers
    assert "kubectl -n model-store port-forward svc/model-store 8333:8333" in out.stdout
    # Back to the plain run: the store leaves the overlay, so the prune deletes it.
    out, calls = standins()
    assert out.returncode == 0, out.stderr
    applied = (standins.state / "applied.yaml").read_text()
    assert "model-store" not in applied and "--model-repository=/models" in applied
