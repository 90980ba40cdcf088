"""kube-score (github.com/zegl/kube-score, built from the Go module proxy by scripts/install-deps.sh) on the
rendered kind overlay: every finding is fixed, or skipped here, in one place, with its reason."""
import subprocess

import pytest

from deploy_support import DEPLOY, ROOT, kustomize

KUBE_SCORE = ROOT / ".deps" / "bin" / "kube-score"

SKIPPED = {
    "container-image-pull-policy": "images are pinned by tag (a registry overlay pins digests); the server image is "
                                   "`kind load`ed, so Always could not pull it, and IfNotPresent lets pods restart "
                                   "without a registry",
    "container-security-context-user-group-id": "only Alloy runs as root: it reads the node's /var/log/pods, which "
                                                "root owns; every other pod runs as a non-root user (checkov checks it)",
    "pod-networkpolicy": "ingress is restricted for every pod; egress stays open (the API server, DNS, Loki, and the "
                         "URLs restart.sh applies), which a NetworkPolicy per pod would only restate",
    "deployment-has-host-podantiaffinity": "topologySpreadConstraints spread the server and Envoy across nodes "
                                           "without refusing to schedule on a one-node cluster",
    "deployment-replicas": "Prometheus and Grafana are one instance each in this local platform (their state is "
                           "one volume)",
    "deployment-strategy": "Prometheus uses Recreate: two instances must not share its TSDB volume",
    "service-type": "the seed asks for Grafana on NodePort 30090 (and Prometheus on 30091) on the kind host",
}


@pytest.mark.parametrize("overlay", ["kind", "kind-bucket", "kind-keda", "kind-canary", "kind-gateway"])
def test_kube_score_finds_nothing_left(tmp_path, overlay):
    assert KUBE_SCORE.exists(), "scripts/install-deps.sh builds kube-score"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(kustomize(DEPLOY / "k8s" / "overlays" / overlay))
    args = [str(KUBE_SCORE), "score", str(rendered), "-o", "ci"]
    for name in SKIPPED:
        args += ["--ignore-test", name]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    findings = [l for l in out.stdout.splitlines() if l.startswith(("[CRITICAL]", "[WARNING]"))]
    assert findings == [], "\n".join(findings)
    assert "[OK]" in out.stdout  # it did score the objects
