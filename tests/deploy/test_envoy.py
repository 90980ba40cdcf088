"""deploy/envoy/envoy.yaml, validated with Envoy's own API types (go-control-plane, tools/envoycheck), and the
transcoder descriptor it loads, built from proto/ by the CMake build."""
import shutil
import subprocess

import pytest

from deploy_support import DEPLOY, ROOT

DESCRIPTOR = ROOT / "build" / "envoy" / "inference_descriptor.pb"
TOOL = ROOT / "tools" / "envoycheck"


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
