"""Checks of the deployment files that run without a cluster (no Docker engine or Kubernetes here)."""
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is required (scripts/install-deps.sh test installs it)")
    return path


def kustomize(path):
    """Renders a kustomization with `kubectl kustomize`, or `kustomize build` where kubectl is absent."""
    import subprocess

    kubectl = shutil.which("kubectl")
    cmd = [kubectl, "kustomize", str(path)] if kubectl else [need("kustomize"), "build", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def kustomize_command():
    """A command that renders like `kubectl kustomize DIR` (for the restart.sh stand-in)."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        return f'exec "{kubectl}" "$@"'
    return f'shift; exec "{need("kustomize")}" build "$@"'
