"""Checks of the deployment files that run without a cluster (no Docker engine or Kubernetes here)."""
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def need(tool):
    path = shutil.which(tool) or next(
        (str(p) for p in (ROOT / ".venv" / "bin" / tool, ROOT / ".deps" / "bin" / tool) if p.exists()), None)
    if not path:
        pytest.fail(f"{tool} is required (scripts/install-deps.sh test installs it)")
    return path


def place_descriptor():
    """Puts the Envoy descriptor that `make build` generates where the inference kustomization expects it
    (scripts/restart.sh exports it from the image build in a real run)."""
    built = ROOT / "build" / "envoy" / "inference_descriptor.pb"
    assert built.exists(), "make build generates the Envoy descriptor"
    generated = DEPLOY / "k8s" / "base" / "inference" / "generated"
    generated.mkdir(exist_ok=True)
    (generated / "inference_descriptor.pb").write_bytes(built.read_bytes())


def place_secrets():
    """Makes the kind overlays' certificates, tokens and object-store keys where their secretGenerators read them,
    with the scripts scripts/restart.sh runs (scripts/kind-secrets.sh, scripts/model-store-secrets.sh)."""
    import subprocess

    overlays = DEPLOY / "k8s" / "overlays"
    for script, overlay in [("kind-secrets.sh", "kind"), ("model-store-secrets.sh", "kind-bucket")]:
        subprocess.run(["sh", str(ROOT / "scripts" / script), str(overlays / overlay / "generated")],
                       check=True, capture_output=True, timeout=60)


def kustomize(path):
    """Renders a kustomization with `kubectl kustomize`, or `kustomize build` where kubectl is absent."""
    import subprocess

    place_descriptor()
    place_secrets()
    cmd = _kustomize_cmd() + [str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _kustomize_cmd():
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    kustomize_bin = shutil.which("kustomize") or (ROOT / ".deps" / "bin" / "kustomize")
    if not pathlib.Path(kustomize_bin).exists():
        # Only on a machine with neither kubectl nor a Go toolchain to build kustomize (install-deps.sh).
        pytest.skip("needs kubectl or kustomize to render the manifests")
    return [str(kustomize_bin), "build"]


def kustomize_command():
    """A command that renders like `kubectl kustomize DIR` (for the restart.sh stand-in)."""
    cmd = _kustomize_cmd()
    if cmd[1] == "kustomize":
        return f'exec "{cmd[0]}" "$@"'
    return f'shift; exec "{cmd[0]}" build "$@"'


def go_module(module):
    """The directory of a Go module (`path@version`) in the module cache, downloaded by scripts/install-deps.sh
    (the other projects' CRD schemas and sources some tests check against; nothing is built)."""
    import json
    import os
    import subprocess

    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    out = subprocess.run([need("go"), "mod", "download", "-json", module], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    info = json.loads(out.stdout or "{}")
    assert "Dir" in info, f"go mod download {module}: {out.stdout[-500:]}{out.stderr[-500:]}"
    return pathlib.Path(info["Dir"])


def strict(schema):
    """A CRD's structural schema with unknown fields refused wherever it lists the fields (`kubectl apply`
    would drop a misspelt field silently)."""
    import copy

    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node and \
                    not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    return schema
