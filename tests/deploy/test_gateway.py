"""The Gateway API overlay (deploy/k8s/overlays/kind-gateway), checked offline: every Gateway API object against
the CRD schema of Gateway API v1.6.3 (config/crd/standard in its Go module, downloaded by
scripts/install-deps.sh), strict, and what the schema cannot say: every backend is a rendered Service on the
port of the right protocol, the weights split 100 between stable and canary alike on both routes, the pin
header and the refused repository API match envoy.yaml's, and TLS to every track is verified with the CA the
servers' certificate was signed by. The schemas' CEL rules (x-kubernetes-validations) are not evaluated here.
No Gateway implementation runs without a cluster; the same split through Envoy is tests/e2e/test_canary.py."""
import copy

import jsonschema
import pytest
import yaml

from deploy_support import DEPLOY, go_module, kustomize, strict

GATEWAY_API = "sigs.k8s.io/gateway-api@v1.6.3"
OVERLAY = DEPLOY / "k8s" / "overlays" / "kind-gateway"
GROUP = "gateway.networking.k8s.io"
PIN = {"name": "x-inference-track", "value": "canary"}


@pytest.fixture(scope="module")
def objects():
    return [d for d in yaml.safe_load_all(kustomize(OVERLAY)) if d]


@pytest.fixture(scope="module")
def validators():
    crds = go_module(GATEWAY_API) / "config" / "crd" / "standard"
    out = {}
    for path in crds.glob(f"{GROUP}_*.yaml"):
        if path.name.endswith("_vap_safeupgrades.yaml"):  # ValidatingAdmissionPolicies, not a CRD
            continue
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version["served"]:
                out[(crd["spec"]["names"]["kind"], f"{GROUP}/{version['name']}")] = jsonschema.Draft7Validator(
                    strict(version["schema"]["openAPIV3Schema"]))
    return out


def gateway_objects(objects):
    return [o for o in objects if o["apiVersion"].startswith(GROUP + "/")]


def one(objects, kind):
    (o,) = [o for o in objects if o["kind"] == kind]
    return o


def test_every_gateway_api_object_is_valid_for_its_crd(objects, validators):
    found = gateway_objects(objects)
    assert sorted(o["kind"] for o in found) == ["BackendTLSPolicy", "GRPCRoute", "Gateway", "HTTPRoute"]
    for o in found:
        assert (o["kind"], o["apiVersion"]) in validators, f"{o['kind']} {o['apiVersion']} is not served by v1.6.3"
        errors = [e.message for e in validators[(o["kind"], o["apiVersion"])].iter_errors(o)]
        assert errors == [], f"{o['kind']} {o['metadata']['name']}: {errors}"


@pytest.mark.parametrize("kind,path,value", [
    ("HTTPRoute", ("spec", "rules", 2, "backendRefs", 0, "weigth"), 90),  # misspelt: dropped silently otherwise
    ("HTTPRoute", ("spec", "rules", 0, "matches", 0, "path", "type"), "Prefix"),  # the Ingress's word, not this API's
    ("HTTPRoute", ("spec", "rules", 2, "filters", 0, "requestMirror", "percent"), 101),
    ("GRPCRoute", ("spec", "rules", 2, "backendRefs", 1, "weight"), -1),
    ("Gateway", ("spec", "listeners", 0, "port"), 70000),
    ("BackendTLSPolicy", ("spec", "validation", "caCertificateRefs", 0, "kind"), 7),
])
def test_the_schema_check_refuses_a_broken_object(objects, validators, kind, path, value):
    broken = copy.deepcopy(one(objects, kind))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(validators[(kind, broken["apiVersion"])].iter_errors(broken)), f"{kind} {path} = {value!r} passed"


def service_port(objects, name, port_name):
    (service,) = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == name]
    return next(p["port"] for p in service["spec"]["ports"] if p["name"] == port_name)


def test_routes_attach_to_their_own_listener_and_reach_every_track_on_the_right_port(objects):
    gateway = one(objects, "Gateway")
    listeners = {l["name"]: l for l in gateway["spec"]["listeners"]}
    for kind, port_name in [("HTTPRoute", "http"), ("GRPCRoute", "grpc")]:
        route = one(objects, kind)
        (parent,) = route["spec"]["parentRefs"]
        assert parent["name"] == gateway["metadata"]["name"]
        assert listeners[parent["sectionName"]]["allowedRoutes"]["kinds"] == [{"kind": kind}]
        refs = [r for rule in route["spec"]["rules"] for r in rule.get("backendRefs", [])]
        refs += [f["requestMirror"]["backendRef"] for rule in route["spec"]["rules"] for f in rule.get("filters", [])
                 if f["type"] == "RequestMirror"]
        assert {r["name"] for r in refs} == {"inference-server-headless", "inference-server-headless-canary",
                                             "inference-server-headless-shadow"}
        for ref in refs:
            assert ref["port"] == service_port(objects, ref["name"], port_name), (kind, ref)


def rules(route):
    return {rule["name"]: rule for rule in route["spec"]["rules"]}


def test_the_weights_split_one_hundred_alike_and_each_answer_names_its_track(objects):
    shares = []
    for kind in ("HTTPRoute", "GRPCRoute"):
        weighted = rules(one(objects, kind))["weighted"]
        stable, canary = weighted["backendRefs"]
        assert (stable["name"], canary["name"]) == ("inference-server-headless", "inference-server-headless-canary")
        assert stable["weight"] + canary["weight"] == 100
        (mirror,) = weighted["filters"]
        assert mirror["requestMirror"]["backendRef"]["name"] == "inference-server-headless-shadow"
        shares.append((canary["weight"], mirror["requestMirror"]["percent"]))
        for ref, track in [(stable, "stable"), (canary, "canary")]:
            assert ref["filters"] == [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "set": [{"name": "x-inference-track", "value": track}]}}]
    assert shares[0] == shares[1], "REST and gRPC are split alike"
    assert shares[0] == (0, 0), "no canary or shadow traffic until a rollout starts (the overlay's patch)"


def test_the_pin_header_and_the_refused_repository_api_match_envoys(objects):
    http, grpc = rules(one(objects, "HTTPRoute")), rules(one(objects, "GRPCRoute"))
    assert [m["path"]["value"] for m in http["pinned-to-canary"]["matches"]] == ["/v1", "/v2"]
    assert all(m["headers"] == [PIN] for m in http["pinned-to-canary"]["matches"])
    assert grpc["pinned-to-canary"]["matches"] == [{"headers": [PIN]}]
    for rule in (http["pinned-to-canary"], grpc["pinned-to-canary"]):
        assert [r["name"] for r in rule["backendRefs"]] == ["inference-server-headless-canary"]
    envoy = yaml.safe_load((DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text())
    routes = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"]
    pinned = next(r for r in routes if r["name"] == "kserve-v2-rest-pinned-to-canary")["match"]["headers"]
    assert pinned == [{"name": PIN["name"], "string_match": {"exact": PIN["value"]}}]
    # Not served from outside: REST's /v2/repository (a longer prefix than the pinned /v2, so it wins there too)
    # and gRPC's repository methods; a rule without backends is refused by the gateway.
    refused = next(r for r in routes if r["name"] == "no-repository-api-from-outside")["match"]["path_separated_prefix"]
    assert http["no-repository-api-from-outside"]["matches"] == [{"path": {"type": "PathPrefix", "value": refused}}]
    methods = {m["method"]["method"] for m in grpc["no-repository-api-from-outside"]["matches"]}
    assert methods == {"RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"}
    assert {m["method"]["service"] for m in grpc["no-repository-api-from-outside"]["matches"]} == {
        "inference.GRPCInferenceService"}
    grpc_refused = next(r for r in routes if r["name"] == "no-grpc-model-control-from-outside")["match"]["prefix"]
    assert all(f"/inference.GRPCInferenceService/{m}".startswith(grpc_refused) for m in methods), grpc_refused
    for rule in (http["no-repository-api-from-outside"], grpc["no-repository-api-from-outside"]):
        assert "backendRefs" not in rule


def test_tls_to_every_track_is_verified_as_envoy_verifies_it(objects):
    policy = one(objects, "BackendTLSPolicy")
    targets = {(t["kind"], t["name"]) for t in policy["spec"]["targetRefs"]}
    assert targets == {("Service", "inference-server-headless"), ("Service", "inference-server-headless-canary"),
                       ("Service", "inference-server-headless-shadow")}
    envoy = yaml.safe_load((DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text())
    sans = {c["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"][
        "match_typed_subject_alt_names"][0]["matcher"]["exact"] for c in envoy["static_resources"]["clusters"]
        if c["name"].startswith("inference_server")}  # not the trace store's
    assert sans == {policy["spec"]["validation"]["hostname"]}
    (ref,) = policy["spec"]["validation"]["caCertificateRefs"]
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["name"]]
    (secret,) = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "inference-server-ca"]
    import base64

    assert config_map["data"]["ca.crt"].encode() == base64.b64decode(secret["data"]["ca.crt"])
