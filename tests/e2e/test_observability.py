"""Proof that the dashboards and alert rules are true: a real Prometheus (the pinned version, built by
scripts/install-deps.sh; Debian's where no Go toolchain is) scrapes the real server and
the real Envoy in front of it (the deployed envoy.yaml) under known traffic, and every PromQL expression in
deploy/monitoring is run against it."""
import json
import pathlib
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
import requests
import tritonclient.grpc as tgrpc

from conftest import EMULATED, MODELS, ROOT, answers, free_port, wait_for

MONITORING = ROOT / "deploy" / "k8s" / "base" / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# Grafana variables, set to the concrete values this setup produces (the scrape config labels the server and
# Envoy namespace="local", pod="local"/"envoy"; traffic goes to breast_cancer and digits). Not ".*": that
# also matches series without the label, so a misspelt label in a panel would still return data.
VARIABLES = {"$namespace": "local", "$model": "breast_cancer|digits", "$pod": "local|envoy", "$__rate_interval": "1m"}


def dashboard_queries():
    """(where, PromQL) for every Prometheus target and query variable of every dashboard."""
    out = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus":
                    out.append((f"{path.name}: {panel['title']} {target['refId']}", target["expr"]))
        for var in dash["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"]["query"])
            assert m, f"unexpected variable query {var['query']}"
            out.append((f"{path.name}: variable {var['name']}", f"count by ({m.group(2)}) ({m.group(1)})"))
    return out


def loki_queries():
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == "loki":
                    out.append(target["expr"])
    return out


def rule_expressions():
    import yaml

    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((path.name, rule.get("record") or rule.get("alert"), rule["expr"], "record" in rule))
    return out


def substitute(expr):
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    return expr


class Prometheus:
    def __init__(self, tmp_path, target, envoy_target, rule_files=RULE_FILES, more_targets=(), labels=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / "prometheus.yml"
        scrape = [{"job_name": "inference-server", "static_configs": [
            # As the cluster's relabelling labels a stable pod (prometheus.yml).
            {"targets": [target, *more_targets], "labels": labels or {"namespace": "local", "pod": "local",
                                                                      "track": "stable"}}]}]
        if envoy_target:  # as the cluster's `envoy` job: Envoy's admin port, /stats/prometheus
            scrape.append({"job_name": "envoy", "metrics_path": "/stats/prometheus", "static_configs": [
                {"targets": [envoy_target], "labels": {"namespace": "local", "pod": "envoy"}}]})
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": scrape,
        }))
        self.config = config
        self.log = open(tmp_path / "prometheus.log", "wb")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: answers(self.url + "/-/ready"), timeout=30, what="prometheus to become ready")

    def query(self, expr):
        r = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def value(self, expr):
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """A server with Envoy in front, known traffic (the /v1 part through Envoy), and a Prometheus that has
    scraped all of it."""
    tmp = tmp_path_factory.mktemp("observability")
    repo = tmp / "models"
    shutil.copytree(MODELS, repo)
    from conftest import Server
    from proxies import Envoy
    server = Server(repo, tmp_path=tmp).wait_ready()
    envoy = Envoy(tmp, [server])
    prom = Prometheus(tmp, f"127.0.0.1:{server.metrics_port}", f"127.0.0.1:{envoy.admin_port}")
    # Prometheus starts scraping a few seconds after it is ready: send traffic only once it does, so
    # every counter is seen rising and rate() has something to say.
    deadline = time.time() + 30
    while prom.value('up{job="inference-server"}') != 1 or prom.value('up{job="envoy"}') != 1:
        assert time.time() < deadline, "prometheus never scraped the server"
        time.sleep(0.2)
    sent = {"ok_breast_cancer": 0, "ok_digits": 0, "invalid": 0, "not_found": 0}
    x = np.random.default_rng(0).random((4, 30)).astype(np.float32)
    client = tgrpc.InferenceServerClient(server.grpc_target)
    try:
        for i in range(40):
            r = requests.post(envoy.url + "/v1/infer",
                              json={"model": "breast_cancer", "rows": [{"values": row} for row in x.tolist()]})
            assert r.status_code == 200
            sent["ok_breast_cancer"] += 1
            inp = tgrpc.InferInput("X", [1, 64], "FP32")
            inp.set_data_from_numpy(np.zeros((1, 64), dtype=np.float32))
            client.infer("digits", [inp])
            sent["ok_digits"] += 1
            if i % 4 == 0:
                assert requests.post(envoy.url + "/v1/infer", json={"model": "digits", "rows": []}).status_code == 400
                sent["invalid"] += 1
                assert requests.post(server.http + "/v2/models/nope/infer", json={"inputs": []}).status_code in (400, 404)
                sent["not_found"] += 1
            time.sleep(0.1)
        total = sum(sent.values())
        deadline = time.time() + 30
        through_envoy = sent["ok_breast_cancer"] + sent["invalid"]
        while (prom.value("sum(inference_requests_total)") != total or
               prom.value('sum(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="ingress_http"})') != through_envoy):
            assert time.time() < deadline, f"prometheus never saw {total} requests"
            time.sleep(0.5)
        time.sleep(3)  # let the recording rules evaluate over the scraped data
        yield server, prom, sent
    finally:
        prom.stop()
        envoy.stop()
        assert server.stop() == 0


def test_prometheus_is_the_version_the_cluster_runs(observed):
    _, prom, _ = observed
    pinned = re.search(r"prometheus/prometheus:v([0-9.]+)",
                       (MONITORING / "prometheus" / "deployment.yaml").read_text()).group(1)
    version = requests.get(prom.url + "/api/v1/status/buildinfo").json()["data"]["version"]
    if version != pinned:
        assert not shutil.which("go"), f"Prometheus {version} is not the pinned {pinned}: run scripts/install-deps.sh test"
        pytest.skip(f"Debian's Prometheus {version}: no Go toolchain here to build the pinned {pinned}")


def test_histogram_counts_equal_the_requests_sent(observed):
    _, prom, sent = observed
    q = lambda e: prom.value(e)
    assert q('sum(inference_request_duration_seconds_count{model="breast_cancer"})') == sent["ok_breast_cancer"]
    assert q('sum(inference_request_duration_seconds_count{model="digits"})') == sent["ok_digits"]
    assert q('sum(inference_compute_duration_seconds_count{model="breast_cancer"})') == sent["ok_breast_cancer"]
    assert q('sum(inference_queue_duration_seconds_count{model="digits"})') == sent["ok_digits"]
    assert q('sum(inference_batch_size_sum{model="breast_cancer"})') == 4 * sent["ok_breast_cancer"]
    assert q('sum(inference_rows_total{model="breast_cancer"})') == 4 * sent["ok_breast_cancer"]
    assert q('sum(inference_requests_total{code="OK"})') == sent["ok_breast_cancer"] + sent["ok_digits"]
    assert q('sum(inference_requests_total{code="INVALID_ARGUMENT", model="digits"})') == sent["invalid"]
    assert q('sum(inference_requests_total{model="_unknown"})') == sent["not_found"]
    assert q('sum(inference_requests_total{protocol="grpc-v2"})') == sent["ok_digits"]
    assert q('inference_inflight_requests') == 0
    # What went through Envoy, as the gateway panels count it.
    gateway = 'sum(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="ingress_http", envoy_response_code_class="%s"})'
    assert q(gateway % "2") == sent["ok_breast_cancer"]
    assert q(gateway % "4") == sent["invalid"]
    assert q('min(envoy_cluster_membership_healthy{envoy_cluster_name="inference_server_grpc"})') == 1


@pytest.mark.not_under_emulation("qemu-user answers the emulated process's /proc/self/stat itself, with RSS 0")
def test_process_metrics_are_scraped(observed):
    _, prom, _ = observed
    assert prom.value('process_resident_memory_bytes') > 1e6
    assert prom.value('process_open_fds') > 3


DASHBOARD_QUERIES = dashboard_queries()
RULE_EXPRESSIONS = rule_expressions()


@pytest.mark.parametrize("where,expr", DASHBOARD_QUERIES, ids=[w for w, _ in DASHBOARD_QUERIES])
def test_every_dashboard_query_is_valid_and_returns_data(observed, where, expr):
    _, prom, _ = observed
    result = prom.query(substitute(expr))
    assert result, f"{where}: no data for {substitute(expr)}"
    values = [float(r["value"][1]) for r in result] if "value" in result[0] else [
        float(v) for r in result for _, v in r["values"]]
    assert any(np.isfinite(values)), f"{where}: only NaN/Inf for {substitute(expr)}: {values[:5]}"


@pytest.mark.parametrize("file,name,expr,is_record", RULE_EXPRESSIONS, ids=[n for _, n, _, _ in RULE_EXPRESSIONS])
def test_every_rule_expression_is_valid_and_recordings_have_data(observed, file, name, expr, is_record):
    _, prom, _ = observed
    prom.query(expr)  # valid PromQL against real data
    if is_record:
        assert prom.query(name), f"{file}: recording rule {name} produced no series"


ALERTS = [(name, expr) for _, name, expr, is_record in RULE_EXPRESSIONS if not is_record]


@pytest.mark.parametrize("name,expr", ALERTS, ids=[n for n, _ in ALERTS])
def test_every_alert_condition_is_false_on_a_healthy_server(observed, name, expr):
    """The alert's expression itself, not only the alert state: every alert has a `for:` longer than this
    test lives, so an expression that is always true would never reach `firing` here."""
    _, prom, _ = observed
    assert prom.query(expr) == [], f"{name} would fire on a healthy server: {expr}"


def test_prometheus_evaluates_every_alert_rule(observed):
    """The Prometheus of these tests runs every alert of the deployed rule files, each evaluated without error
    (whether an alert's condition holds is the test above: its `for:` outlives this test)."""
    _, prom, _ = observed
    wait_for(lambda: all(r.get("lastEvaluation", "").startswith("20") for g in
                         requests.get(prom.url + "/api/v1/rules").json()["data"]["groups"] for r in g["rules"]),
             what="every rule to be evaluated once")
    rules = {r["name"]: r for g in requests.get(prom.url + "/api/v1/rules").json()["data"]["groups"]
             for r in g["rules"] if r["type"] == "alerting"}
    assert sorted(rules) == sorted(name for name, _ in ALERTS)
    assert all(r["health"] == "ok" for r in rules.values()), {n: r.get("lastError") for n, r in rules.items()}


def test_loki_queries_select_fields_the_logs_have(observed):
    server, _, _ = observed
    lines = server.log_lines()  # every line is JSON
    queries = loki_queries()
    assert queries
    for q in queries:
        # Fields used after `| json` must exist in the lines the query is meant to find.
        fields = re.findall(r"\|\s*(\w+)\s*=~?", q.split("| json", 1)[1])
        assert fields
        warn = [l for l in lines if l["level"] in ("warn", "error") and l["msg"] == "request"]
        assert warn, "the traffic included failed requests"
        for f in fields:
            assert all(f in l for l in warn), f"log lines lack '{f}' used by {q}"


def test_promtool_checks_the_config_and_the_rules(observed, tmp_path):
    _, prom, _ = observed
    for args in (["check", "config", str(prom.config)],
                 ["check", "config", str(MONITORING / "prometheus" / "prometheus.local.yml")],
                 ["check", "rules", *map(str, RULE_FILES)],
                 ["test", "rules", str(MONITORING / "prometheus" / "tests" / "alerts_test.yml")]):
        out = subprocess.run([PROMTOOL, *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_alerts_fire_on_their_faults(tmp_path):
    """The alert rules as deployed but with `for: 0s`, against a real server with real faults: a model whose
    only version fails to load, requests it answers UNAVAILABLE, requests slower than the 250 ms SLO, and a
    scrape target that is down. (InferenceNoTraffic: the next test.)"""
    from conftest import Server
    from test_lifecycle import slow_model

    rules = immediate_rules(tmp_path)
    repo = tmp_path / "models"
    slow_model(repo / "slow" / "1" / "model.onnx", depth=160)  # well over 250 ms a request
    (repo / "slow" / "config.pbtxt").write_text('backend: "onnxruntime"\ninstance_group [ { count: 2 kind: KIND_CPU } ]\n')
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.onnx").write_bytes(b"not an onnx model")
    (repo / "broken" / "config.pbtxt").write_text('backend: "onnxruntime"\n')
    # A canary beside its stable version, for each comparison alert: "latency" (version 2 about 100 ms a request,
    # hundreds of times slower: with a dozen requests version 1's p99 is its slowest one, and when version 2 took
    # 13 ms, one version-1 request of 10 ms hid it) and "errors" (version 2 answers every request with a server
    # error: a Reshape its input cannot fit).
    slow_model(repo / "latency" / "1" / "model.onnx", depth=1)
    slow_model(repo / "latency" / "2" / "model.onnx", depth=192)
    (repo / "latency" / "config.pbtxt").write_text('backend: "onnxruntime"\nversion_policy: { all { } }\n')
    reshape_model(repo / "errors" / "1" / "model.onnx", [-1, 4])
    reshape_model(repo / "errors" / "2" / "model.onnx", [3])
    (repo / "errors" / "config.pbtxt").write_text('backend: "onnxruntime"\nversion_policy: { all { } }\n')
    server = Server(repo, tmp_path=tmp_path)
    wait_for(lambda: answers(server.http + "/healthz"), what="the server (live, not ready: a model failed)")
    prom = Prometheus(tmp_path, f"127.0.0.1:{server.metrics_port}", None, rule_files=rules,
                      more_targets=[f"127.0.0.1:{free_port()}"])  # nobody listens there: a target down
    try:
        deadline = time.time() + 30
        while prom.value('count(up{job="inference-server"})') != 2:
            assert time.time() < deadline, "prometheus never scraped"
            time.sleep(0.2)
        x = np.ones((256, 1024), dtype=np.float32)
        client = tgrpc.InferenceServerClient(server.grpc_target)
        for _ in range(4):
            inp = tgrpc.InferInput("X", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            client.infer("slow", [inp])  # over 250 ms each
            r = requests.post(server.http + "/v2/models/broken/infer",
                              json={"inputs": [{"name": "X", "datatype": "FP32", "shape": [1], "data": [1]}]})
            assert r.status_code == 503
            time.sleep(1)
        expected = {"InferenceHighErrorRatio", "InferenceLatencySLOFastBurn", "InferenceLatencySLOSlowBurn",
                    "InferenceModelNotReady", "InferenceModelVersionFailed", "InferenceTargetDown"}
        firing = wait_firing(prom, expected)
        assert expected <= firing, (f"not firing: {expected - firing}; " + ", ".join(
            f"{r}={prom.query(r)}" for r in ["job:inference_latency_slo_misses:ratio_rate5m",
                                             "job:inference_latency_slo_misses:ratio_rate1h", "ALERTS"]))
        assert "InferenceNoTraffic" not in firing
        assert not {a for a in firing if a.startswith("InferenceVersion")}, "one version alone is compared with itself"

        # Then the canaries (after: their fast requests would dilute the latency SLO's share of slow ones).
        for _ in range(3):
            for version, count in [("1", 4), ("2", 1)]:
                for _ in range(count):
                    inp = tgrpc.InferInput("X", [32, 1024], "FP32")
                    inp.set_data_from_numpy(np.ones((32, 1024), np.float32))
                    client.infer("latency", [inp], model_version=version)
            for version, status in [("1", 200), ("2", 500), ("1", 200), ("2", 500)]:
                r = requests.post(f"{server.http}/v2/models/errors/versions/{version}/infer",
                                  json={"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]})
                assert r.status_code == status, r.text
            time.sleep(1)
        # Under emulation slow_model scales its depth down to 1 for both "latency" versions, which then cost the
        # same: only the error comparison is checked there.
        worse = {("InferenceVersionErrorsAboveOthers", "errors", "2")}
        if not EMULATED:
            worse.add(("InferenceVersionSlowerThanOthers", "latency", "2"))
        comparisons = {name for name, _, _ in worse}
        wait_firing(prom, comparisons)
        # Each comparison alert names the canary that is worse, never the version it is compared with.
        alerts = requests.get(prom.url + "/api/v1/alerts").json()["data"]["alerts"]
        compared = {(a["labels"]["alertname"], a["labels"]["model"], a["labels"]["version"]) for a in alerts
                    if a["labels"]["alertname"] in comparisons and a["state"] == "firing"}
        assert compared == worse, (compared, {r: prom.query(r) for r in [
            "job_model_version:inference_request_duration_seconds:p99_rate5m",
            "job_model_version:inference_error_ratio:rate5m"]})
    finally:
        prom.stop()
        assert server.stop() == 0


def wait_firing(prom, expected, timeout=30):
    """The names of the firing alerts once `expected` are among them, or after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        firing = {a["labels"]["alertname"] for a in requests.get(prom.url + "/api/v1/alerts").json()["data"]["alerts"]
                  if a["state"] == "firing"}
        if expected <= firing or time.time() > deadline:
            return firing
        time.sleep(0.5)


def reshape_model(path, shape):
    """X [N, 4] FP32 reshaped to `shape`: [-1, 4] serves any N; [3] fails every request in ONNX Runtime's Run."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["X", "shape"], ["Y"])], "reshape",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4] if shape == [-1, 4] else shape)],
        initializer=[helper.make_tensor("shape", TensorProto.INT64, [len(shape)], shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def immediate_rules(tmp_path, window=None):
    """A test-only copy of the deployed rules with `for: 0s` (and, with `window`, every 5m rate window of the
    recording rules shortened to it), so alerts fire within a test's lifetime."""
    import yaml

    rules = tmp_path / "rules"
    rules.mkdir()
    for path in RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
                elif window:
                    rule["expr"] = rule["expr"].replace("[5m]", f"[{window}]")
        (rules / path.name).write_text(yaml.safe_dump(doc))
    return sorted(rules.glob("*.yml"))


def test_no_traffic_fires_once_a_server_that_served_requests_goes_quiet(tmp_path):
    """InferenceNoTraffic, with the 5-minute rate window shortened to 5 s in a test-only copy of the rules."""
    from conftest import Server

    server = Server(MODELS, tmp_path=tmp_path).wait_ready()
    prom = Prometheus(tmp_path, f"127.0.0.1:{server.metrics_port}", None, rule_files=immediate_rules(tmp_path, "5s"))
    try:
        deadline = time.time() + 30
        while prom.value('up{job="inference-server"}') != 1:
            assert time.time() < deadline, "prometheus never scraped"
            time.sleep(0.2)
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 10], "data": [0.01] * 10}]}
        for _ in range(10):
            assert requests.post(server.http + "/v2/models/diabetes/infer", json=body).status_code == 200
            time.sleep(0.3)

        def firing():
            return {a["labels"]["alertname"] for a in requests.get(prom.url + "/api/v1/alerts").json()["data"]["alerts"]
                    if a["state"] == "firing"}

        assert "InferenceNoTraffic" not in firing()  # traffic in the window
        deadline = time.time() + 30
        while "InferenceNoTraffic" not in firing():
            assert time.time() < deadline, f"InferenceNoTraffic never fired: {firing()}"
            time.sleep(0.5)
    finally:
        prom.stop()
        assert server.stop() == 0

