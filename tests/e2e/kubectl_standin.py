#!/usr/bin/env python3
"""A stand-in for kubectl in tests/e2e/test_canary.py, where no cluster runs: it answers the calls
scripts/canary.sh makes, from the rendered kind-canary overlay (CANARY_OBJECTS, JSON) and a ConfigMap kept in
CANARY_STATE; an applied envoy-runtime ConfigMap is written into CANARY_RUNTIME as the kubelet writes a
mounted ConfigMap (proxies.write_runtime), so the real Envoy of the test follows it. Every call is appended to
CANARY_STATE/calls.jsonl. A call it does not know fails, so the script cannot drift from what it answers."""
import json
import os
import pathlib
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from proxies import write_runtime  # noqa: E402

state = pathlib.Path(os.environ["CANARY_STATE"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\n")
assert args[:2] == ["-n", "inference"], args
args = args[2:]
config_map = state / "envoy-runtime.json"


def jsonpath(obj, expr):
    """The few JSONPath forms canary.sh uses: {.a.b}, {.a.b[0].c}."""
    assert expr.startswith("jsonpath={.") and expr.endswith("}"), expr
    for part in expr[len("jsonpath={."):-1].split("."):
        name, _, index = part.partition("[")
        obj = obj.get(name) if isinstance(obj, dict) else None
        if index and obj is not None:
            obj = obj[int(index[:-1])]
        if obj is None:
            return ""
    return obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))


if args[:3] == ["get", "configmap", "envoy-runtime"] and "--ignore-not-found" in args:
    data = json.loads(config_map.read_text()) if config_map.exists() else {}
    print(jsonpath(data, args[args.index("-o") + 1]) if data else "", end="")
elif args[:3] == ["create", "configmap", "envoy-runtime"] and args[-3:] == ["--dry-run=client", "-o", "yaml"]:
    literals = dict(a.removeprefix("--from-literal=").split("=", 1) for a in args if a.startswith("--from-literal="))
    print(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "envoy-runtime", "namespace": "inference"}, "data": literals}))
elif args == ["apply", "-f", "-"]:
    obj = yaml.safe_load(sys.stdin.read())
    assert obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "envoy-runtime", obj
    config_map.write_text(json.dumps(obj))
    write_runtime(os.environ["CANARY_RUNTIME"], obj)
elif args[:2] == ["get", "deployment"]:
    objects = json.loads(pathlib.Path(os.environ["CANARY_OBJECTS"]).read_text())
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == args[2]]
    print(jsonpath(deployment, args[args.index("-o") + 1]), end="")
elif args[:3] == ["patch", "deployment", "inference-server"] and args[3:6] == ["--type", "json", "-p"]:
    json.loads(args[6])  # a JSON patch, recorded in calls.jsonl
elif args[:3] == ["rollout", "status", "deployment/inference-server"]:
    pass
else:
    sys.exit(f"kubectl stand-in: not a call canary.sh makes: {args}")
