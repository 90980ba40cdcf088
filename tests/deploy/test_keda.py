"""The KEDA autoscaling overlay (deploy/k8s/overlays/kind-keda), checked offline against KEDA's own definitions:
the ScaledObject against the CRD schema KEDA v2.21.0 ships (config/crd/bases in its Go module, downloaded by
scripts/install-deps.sh), strict (a field the schema does not name is refused, as `kubectl apply` would drop it
silently), and each trigger's metadata keys against the `keda:"name=…"` tags of the scaler's Go source in that
module (metadata is a free map in the schema). The query itself runs on a real Prometheus in
tests/e2e/test_autoscaling.py."""
import copy
import re

import jsonschema
import pytest
import yaml

from deploy_support import DEPLOY, go_module, kustomize, strict

KEDA_MODULE = "github.com/kedacore/keda/v2@v2.21.0"
OVERLAY = DEPLOY / "k8s" / "overlays" / "kind-keda"
SCALER_SOURCES = {"prometheus": "prometheus_scaler.go", "cpu": "cpu_memory_scaler.go"}


@pytest.fixture(scope="module")
def keda():
    return go_module(KEDA_MODULE)


@pytest.fixture(scope="module")
def scaled_object():
    objects = [d for d in yaml.safe_load_all(kustomize(OVERLAY)) if d]
    (so,) = [o for o in objects if o["kind"] == "ScaledObject"]
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"], "KEDA makes its own HPA"
    return so


def validator(keda):
    crd = yaml.safe_load((keda / "config" / "crd" / "bases" / "keda.sh_scaledobjects.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def metadata_errors(keda, so):
    """Each trigger's metadata keys that its scaler does not read, and the ones it requires that are missing."""
    errors = []
    for trigger in so["spec"]["triggers"]:
        source = (keda / "pkg" / "scalers" / SCALER_SOURCES[trigger["type"]]).read_text()
        tags = re.findall(r'keda:"name=(\w+),([^"]*)"', source)
        known = {name for name, _ in tags}
        required = {name for name, rest in tags if "optional" not in rest and "default" not in rest
                    and "triggerMetadata" in rest}
        keys = set(trigger["metadata"])
        errors += [f"{trigger['type']}: unknown key {k}" for k in keys - known]
        errors += [f"{trigger['type']}: missing {k}" for k in required - keys]
    return errors


def test_the_scaled_object_is_valid_for_kedas_own_schema(keda, scaled_object):
    assert list(validator(keda).iter_errors(scaled_object)) == []
    assert scaled_object["spec"]["scaleTargetRef"]["name"] == "inference-server"


@pytest.mark.parametrize("path, value", [
    (("spec", "minReplicas"), 2),  # the HPA's spelling, not KEDA's
    (("spec", "advanced", "horizontalPodAutoscalerConfig", "behaviour"), {}),
    (("spec", "pollingInterval"), "15s"),  # seconds as an integer
    (("spec", "triggers", 0, "authenticationRef"), "prometheus-auth"),  # an object with a name
])
def test_the_schema_check_refuses_a_misspelt_scaled_object(keda, scaled_object, path, value):
    broken = copy.deepcopy(scaled_object)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(validator(keda).iter_errors(broken)), f"{path} = {value!r} passed"


def test_each_trigger_gives_exactly_what_its_scaler_reads(keda, scaled_object):
    assert metadata_errors(keda, scaled_object) == []
    broken = copy.deepcopy(scaled_object)
    broken["spec"]["triggers"][0]["metadata"]["treshold"] = broken["spec"]["triggers"][0]["metadata"].pop("threshold")
    assert metadata_errors(keda, broken) == ["prometheus: unknown key treshold", "prometheus: missing threshold"]


def test_the_query_is_one_number_per_cluster_and_never_nan(scaled_object):
    """KEDA refuses a query with several series; with no traffic the mean is 0/0, which clamp_min makes 0."""
    (prom,) = [t for t in scaled_object["spec"]["triggers"] if t["type"] == "prometheus"]
    query = prom["metadata"]["query"]
    assert query.count("sum(") == 2 and " by " not in query
    assert "clamp_min(" in query
    assert prom["metricType"] == "Value", "a mean over pods is not a per-pod average"
