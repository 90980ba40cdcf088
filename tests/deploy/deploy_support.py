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
