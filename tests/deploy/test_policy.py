"""Third-party scanners over what we ship: checkov (manifests and Dockerfile; every exception is an annotated,
justified skip), hadolint (Dockerfile) and shellcheck (scripts)."""
import json
import subprocess

import pytest

from deploy_support import DEPLOY, ROOT, kustomize, need

CHECKOV = ROOT / ".deps" / "checkov-venv" / "bin" / "checkov"


def checkov(*args):
    if not CHECKOV.exists():
        pytest.fail("checkov is installed by scripts/install-deps.sh test into .deps/checkov-venv")
    out = subprocess.run([str(CHECKOV), *args, "--output", "json", "--quiet", "--skip-download"],
                         capture_output=True, text=True, timeout=600)
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    return failed, skipped


@pytest.mark.parametrize("overlay", ["kind", "kind-bucket", "kind-keda", "kind-canary", "kind-gateway"])
def test_checkov_finds_nothing_unjustified_in_the_manifests(tmp_path, overlay):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(kustomize(DEPLOY / "k8s" / "overlays" / overlay))
    failed, skipped = checkov("-f", str(rendered), "--framework", "kubernetes")
    assert failed == [], [(c["check_id"], c["resource"]) for c in failed]
    for c in skipped:  # every skip carries its reason
        assert c.get("suppress_comment", "").strip(), c["check_id"]


def test_checkov_passes_the_dockerfile():
    failed, _ = checkov("-f", str(ROOT / "Dockerfile"), "--framework", "dockerfile")
    assert failed == [], [c["check_id"] for c in failed]


def test_hadolint_passes_the_dockerfile():
    out = subprocess.run([need("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("script", ["scripts/restart.sh", "scripts/install-deps.sh", "scripts/fetch-onnxruntime.sh",
                                    "scripts/fuzz.sh", ".ci/run", "scripts/kind-secrets.sh",
                                    "scripts/model-store-secrets.sh",
                                    "deploy/k8s/components/model-store/seed-models.sh"])
def test_shellcheck(script):
    out = subprocess.run([need("shellcheck"), str(ROOT / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
