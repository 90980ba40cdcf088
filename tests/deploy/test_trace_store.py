"""The cluster's trace store run without a cluster: real Jaeger v2 (`.deps/bin/jaeger`, built by
scripts/install-deps.sh from the Go module of the image's release) started with the rendered jaeger-config
ConfigMap and the Deployment's arguments, its listeners moved to free loopback ports through the variables the
file reads. The real server exports to it as the Deployment says (--trace-url on the Service's otlp-http port);
Jaeger's query API (what Grafana's Jaeger data source reads) returns the request's trace, and the Loki derived
field's regex, applied to the server's own log lines, finds that trace's id (the link from a log line to its
trace)."""
import os
import pathlib
import re
import subprocess
import time

import requests
import yaml

from deploy_support import DEPLOY, ROOT, kustomize
from ports import free_port

JAEGER = ROOT / ".deps" / "bin" / "jaeger"
SERVER = pathlib.Path(os.environ.get("INFERENCE_SERVER", ROOT / "build" / "inference-server")).resolve()
TRACE = "6e0c63257de34c92bf9efcd03927272e"


def free_ports(n):
    return [free_port() for _ in range(n)]


def wait(predicate, what, proc, log, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"{what}: exited\n{log.read_text()[-3000:]}"
        try:
            if predicate():
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def test_the_servers_spans_reach_jaeger_as_deployed_and_a_log_line_links_to_its_trace(tmp_path):
    objects = [d for d in yaml.safe_load_all(kustomize(DEPLOY / "k8s" / "overlays" / "kind")) if d]
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("jaeger-config")]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "jaeger"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (mount,) = container["volumeMounts"]
    config = tmp_path / "jaeger.yaml"
    config.write_text(config_map["data"]["jaeger.yaml"])
    args = [str(config) if a == f"{mount['mountPath']}/jaeger.yaml" else a for a in container["args"]]
    assert str(config) in args, container["args"]
    grpc_port, http_port, query, query_grpc, health = free_ports(5)
    env = dict(os.environ, JAEGER_LISTEN_HOST="127.0.0.1", JAEGER_OTLP_GRPC_PORT=str(grpc_port),
               JAEGER_OTLP_HTTP_PORT=str(http_port), JAEGER_QUERY_PORT=str(query),
               JAEGER_QUERY_GRPC_PORT=str(query_grpc), JAEGER_HEALTH_PORT=str(health))
    jaeger_log = tmp_path / "jaeger.log"
    jaeger = subprocess.Popen([str(JAEGER), *args], stdout=open(jaeger_log, "wb"), stderr=subprocess.STDOUT, env=env)
    server = None
    try:
        # The Deployment's readiness probe.
        probe = container["readinessProbe"]["httpGet"]
        assert probe["port"] == "health"
        wait(lambda: requests.get(f"http://127.0.0.1:{health}{probe['path']}", timeout=1).status_code == 200,
             "jaeger ready", jaeger, jaeger_log)

        (server_deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "inference-server"]
        (server_container,) = server_deployment["spec"]["template"]["spec"]["containers"]
        trace_url = next(a.split("=", 1)[1] for a in server_container["args"] if a.startswith("--trace-url="))
        assert trace_url == "http://jaeger.monitoring.svc.cluster.local:4318/v1/traces"
        sample = next(a for a in server_container["args"] if a.startswith("--trace-sample-rate="))
        grpc, http, metrics = free_ports(3)
        server_log = tmp_path / "server.log"
        server = subprocess.Popen(
            [str(SERVER), "--model-repository", str(ROOT / "models" / "repository"), "--host", "127.0.0.1",
             "--grpc-port", str(grpc), "--http-port", str(http), "--metrics-port", str(metrics),
             "--trace-url", trace_url.replace("jaeger.monitoring.svc.cluster.local:4318", f"127.0.0.1:{http_port}"),
             sample, "--trace-delay-ms", "100"],
            stdout=open(server_log, "wb"), stderr=subprocess.STDOUT, env=dict(os.environ, POD_NAME="inference-server-0"))
        wait(lambda: requests.get(f"http://127.0.0.1:{http}/v2/health/ready", timeout=1).status_code == 200,
             "server ready", server, server_log)
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 30], "data": [0.5] * 30}]}
        r = requests.post(f"http://127.0.0.1:{http}/v2/models/breast_cancer/infer", json=body, timeout=10,
                          headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
        assert r.status_code == 200, r.text

        # Grafana's Loki data source: the derived field's regex on the server's access log line.
        datasources = yaml.safe_load((DEPLOY / "k8s" / "base" / "monitoring" / "grafana" / "provisioning" /
                                      "datasources" / "datasources.yml").read_text())["datasources"]
        (derived,) = next(d for d in datasources if d["uid"] == "loki")["jsonData"]["derivedFields"]
        wait(lambda: '"msg":"request"' in server_log.read_text(), "the access log line", server, server_log)
        found = {m.group(1) for m in re.finditer(derived["matcherRegex"], server_log.read_text())}
        assert found == {TRACE}, found

        # Grafana's Jaeger data source: the trace of that id, from the query API on the query port.
        def trace():
            r = requests.get(f"http://127.0.0.1:{query}/api/traces/{TRACE}", timeout=2)
            return r.json()["data"][0] if r.status_code == 200 and r.json().get("data") else None

        wait(lambda: trace() and len(trace()["spans"]) == 3, "the trace in jaeger", jaeger, jaeger_log)
        t = trace()
        spans = {s["operationName"]: s for s in t["spans"]}
        assert set(spans) == {"infer breast_cancer", "queue", "execute breast_cancer"}, spans
        root = spans["infer breast_cancer"]
        assert [(ref["refType"], ref["spanID"]) for ref in root["references"]] == [("CHILD_OF", "00f067aa0ba902b7")]
        assert [(ref["refType"], ref["spanID"]) for ref in spans["queue"]["references"]] == [("CHILD_OF", root["spanID"])]
        # The execution's parent is also its link (the batch's one request): Jaeger shows the link.
        assert root["spanID"] in {ref["spanID"] for ref in spans["execute breast_cancer"]["references"]}
        process = t["processes"][root["processID"]]
        assert process["serviceName"] == "inference-server"
        assert {"key": "k8s.pod.name", "type": "string", "value": "inference-server-0"} in process["tags"]
    finally:
        for proc in (server, jaeger):
            if proc:
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:  # jaeger takes ~10 s to stop: not what is tested
                    proc.kill()
                    proc.wait()
