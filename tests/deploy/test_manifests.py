"""The Kubernetes manifests, checked offline: kustomize builds every overlay, every object validates against the
OpenAPI schema of the pinned Kubernetes version, and the values that must agree across files do."""
import json
import re
import shutil
import subprocess

import pytest
import yaml

from deploy_support import DEPLOY, ROOT, kustomize, need

K8S_VERSION = "1.35.0"  # deploy/kind/cluster.yaml pins kindest/node:v1.35.0
# The oldest and newest Kubernetes that ingress-nginx v1.15 and the kind node images support: the manifests
# must be valid on both.
K8S_VERSIONS = ["1.31.0", K8S_VERSION]
OVERLAYS = [DEPLOY / "k8s" / "base", DEPLOY / "k8s" / "overlays" / "kind", DEPLOY / "k8s" / "overlays" / "kind-bucket",
            DEPLOY / "k8s" / "overlays" / "kind-keda", DEPLOY / "k8s" / "overlays" / "kind-canary",
            DEPLOY / "k8s" / "overlays" / "kind-gateway"]
# Kinds of other projects' CRDs, each validated against that project's own schema (tests/deploy/test_keda.py,
# tests/deploy/test_gateway.py).
CRD_GROUPS = ("keda.sh/", "gateway.networking.k8s.io/")


def render(path):
    return [d for d in yaml.safe_load_all(kustomize(path)) if d]


@pytest.fixture(scope="module")
def objects():
    return render(OVERLAYS[1])


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_object_validates_against_the_kubernetes_schema(overlay, version):
    import kubernetes_validate

    objects = render(overlay)
    assert len(objects) > 20
    for obj in objects:
        if not obj["apiVersion"].startswith(CRD_GROUPS):
            kubernetes_validate.validate(obj, version, strict=True)


def test_kind_cluster_pins_a_node_image_by_digest_for_a_supported_version():
    cluster = yaml.safe_load((DEPLOY / "kind" / "cluster.yaml").read_text())
    images = {n["image"] for n in cluster["nodes"]}
    assert len(images) == 1
    image = images.pop()
    assert re.fullmatch(r"kindest/node:v1\.(3[1-5])\.\d+@sha256:[0-9a-f]{64}", image), image
    roles = [n["role"] for n in cluster["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    cp = cluster["nodes"][0]
    assert cp["labels"]["ingress-ready"] == "true"
    assert {m["hostPort"] for m in cp["extraPortMappings"]} >= {80, 443, 30090, 30091}


def test_server_deployment_is_production_shaped(objects):
    dep = find(objects, "Deployment", "inference-server")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # A failed model must not restart the pod: startup and liveness ask only whether the process answers.
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The listeners speak TLS: so do the probes (the kubelet's gRPC probe cannot).
    assert all(c[p]["httpGet"]["scheme"] == "HTTPS" for p in ("startupProbe", "readinessProbe", "livenessProbe"))
    assert c["resources"]["requests"] and c["resources"]["limits"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    # Prometheus selects targets by port name (prometheus.yml keeps `metrics`): no prometheus.io/*
    # annotations that nothing reads.
    assert {"name": "metrics", "containerPort": 8002, "protocol": "TCP"} in c["ports"]
    assert not any(k.startswith("prometheus.io/") for k in dep["spec"]["template"]["metadata"].get("annotations", {}))
    # Drain timing: preStop outlasts Envoy's DNS refresh plus CoreDNS's cache; the grace period covers both.
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    envoy = yaml.safe_load(find(objects, "ConfigMap", next(
        o["metadata"]["name"] for o in objects if o["metadata"]["name"].startswith("envoy-config")))["data"]["envoy.yaml"])
    refresh = max(int(dns_cluster(c_)["dns_refresh_rate"].rstrip("s")) for c_ in envoy["static_resources"]["clusters"])
    coredns_ttl = 5
    assert pre_stop >= refresh + coredns_ttl
    grace = next(int(a.split("=")[1]) for a in c["args"] if a.startswith("--grace-period-s="))
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace


def test_envoy_leaves_the_endpoints_before_it_stops(objects):
    pod = find(objects, "Deployment", "envoy")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] >= 5
    assert pod["terminationGracePeriodSeconds"] > c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert "--disable-hot-restart" in c["args"] and c["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_size_limits_agree_across_ingress_envoy_and_server(objects):
    server_limit = next(int(a.split("=")[1]) for a in find(objects, "Deployment", "inference-server")["spec"]["template"]
                        ["spec"]["containers"][0]["args"] if a.startswith("--max-request-bytes="))
    ingress = find(objects, "Ingress", "inference")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == f"{server_limit >> 20}m"
    envoy = yaml.safe_load((DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text())
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = hcm["http_filters"][0]["typed_config"]
    assert transcoder["max_request_body_size"] == server_limit
    assert {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]} == {"/v1", "/v2"}
    assert ingress["spec"]["ingressClassName"] == "nginx"


def dns_cluster(cluster):
    """The settings of an Envoy cluster of the `envoy.clusters.dns` type (what STRICT_DNS was)."""
    assert cluster["cluster_type"]["name"] == "envoy.clusters.dns", cluster["name"]
    return {"all_addresses_in_single_endpoint": False, **cluster["cluster_type"]["typed_config"]}


def inference_clusters(envoy):
    """Envoy's clusters of inference servers (every track), not the trace store's."""
    clusters = envoy["static_resources"]["clusters"]
    assert {c["name"] for c in clusters if not c["name"].startswith("inference_server")} == {"opentelemetry_collector"}
    return [c for c in clusters if c["name"].startswith("inference_server")]


def test_envoy_balances_over_the_headless_service(objects):
    headless = find(objects, "Service", "inference-server-headless")
    assert headless["spec"]["clusterIP"] == "None"
    envoy = yaml.safe_load((DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text())
    for cluster in inference_clusters(envoy):
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        track = cluster["name"].removeprefix("inference_server_").removeprefix("grpc").removeprefix("http")
        assert track in ("", "_canary", "_shadow"), cluster["name"]
        # The canary's and the shadow's Services: deploy/k8s/components/canary (tests/deploy/test_canary.py).
        assert address["socket_address"]["address"] == "inference-server-headless" + track.replace("_", "-")
        assert dns_cluster(cluster)["all_addresses_in_single_endpoint"] is False  # one endpoint per pod


def test_exposure_autoscaling_and_policies(objects):
    assert find(objects, "Service", "grafana")["spec"]["ports"][0]["nodePort"] == 30090
    assert find(objects, "Service", "prometheus")["spec"]["ports"][0]["nodePort"] == 30091
    hpa = find(objects, "HorizontalPodAutoscaler", "inference-server")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu" and hpa["spec"]["minReplicas"] >= 2
    assert find(objects, "PodDisruptionBudget", "inference-server")["spec"]["minAvailable"] == 1
    for name in ("inference-server", "envoy"):
        assert find(objects, "PodDisruptionBudget", name)["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    # The HPA owns the server's replica count: a Deployment that set it would reset autoscaling on every apply.
    assert hpa["spec"]["scaleTargetRef"]["name"] == "inference-server"
    assert "replicas" not in find(objects, "Deployment", "inference-server")["spec"]
    policy = find(objects, "NetworkPolicy", "inference-server")
    sources = [f for rule in policy["spec"]["ingress"] for f in rule["from"]]
    assert {"app.kubernetes.io/name": "envoy"} in [s.get("podSelector", {}).get("matchLabels") for s in sources]
    # The in-cluster clients docs/deploy.md offers the `inference-server` Service to are admitted.
    assert {"inference.k8s-ml/client": "true"} in [s.get("podSelector", {}).get("matchLabels") for s in sources]


def test_grafana_runs_on_a_read_only_root_without_touching_its_plugins(objects):
    """Grafana 13 preinstalls/updates plugins in place at start: on a read-only root that failed and the Loki
    datasource went unregistered. Setting names as Grafana's [plugins] and [log] sections spell them."""
    pod = find(objects, "Deployment", "grafana")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert c["securityContext"]["readOnlyRootFilesystem"]
    assert env["GF_LOG_MODE"] == "console"
    assert env["GF_PLUGINS_PREINSTALL_DISABLED"] == "true" and env["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"] == "false"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == env["GF_PATHS_PLUGINS"])
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mount["name"])


def test_loki_liveness_does_not_restart_a_slow_start(objects):
    c = find(objects, "StatefulSet", "loki")["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert "tcpSocket" in c["livenessProbe"], "liveness on /ready restarts Loki while it is still starting"


def test_every_object_carries_the_label_restart_sh_prunes_by(objects):
    # Without it `kubectl apply --prune -l` would delete what it just applied, or leave old objects behind.
    unlabelled = [f'{o["kind"]}/{o["metadata"]["name"]}' for o in objects
                  if o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "inference-platform"]
    assert unlabelled == []


def test_log_agent_positions_survive_a_restart(objects):
    pod = find(objects, "DaemonSet", "alloy")["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["hostPath"]["type"] == "DirectoryOrCreate", "an emptyDir loses the positions: every restart re-ships all logs"


def test_prometheus_config_is_valid(tmp_path):
    config = DEPLOY / "k8s" / "base" / "monitoring" / "prometheus" / "prometheus.yml"
    parsed = yaml.safe_load(config.read_text())
    # rule_files point at the mount path in the pod: check against the repository's copies.
    parsed["rule_files"] = [str(config.parent / "rules" / "*.yml")]
    for job in parsed["scrape_configs"]:
        for sd in job.get("kubernetes_sd_configs", []):
            assert sd["role"] == "pod" and sd["namespaces"]["names"] == ["inference"]
    assert [j["job_name"] for j in parsed["scrape_configs"]] == ["inference-server", "inference-server-shadow", "envoy",
                                                                 "prometheus"]
    pinned = re.search(r"prometheus/prometheus:v([0-9.]+)",
                       (config.parent / "deployment.yaml").read_text()).group(1)
    version = re.search(r"version (\S+)", subprocess.run([need("promtool"), "--version"], capture_output=True,
                                                         text=True).stdout).group(1)
    if version != pinned:
        # Only where no Go toolchain could build the pinned promtool (scripts/install-deps.sh): Debian's
        # promtool lacks Kubernetes service discovery, so the discovery blocks become static targets.
        assert not shutil.which("go"), f"promtool {version} is not the pinned {pinned}: run scripts/install-deps.sh test"
        for job in parsed["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None):
                job["static_configs"] = [{"targets": ["placeholder:1"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(parsed))
    out = subprocess.run([need("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def mounted(pod, container, path):
    """The Secret whose volume `container` of `pod` mounts at the directory of `path` (whole, so the kubelet
    updates the files when it changes), or None."""
    for m in container.get("volumeMounts", []):
        if path.rsplit("/", 1)[0] == m["mountPath"]:
            assert "subPath" not in m and m.get("readOnly"), m
            volume = next(v for v in pod["volumes"] if v["name"] == m["name"])
            return volume.get("secret", {}).get("secretName")
    return None


def test_servers_serve_tls_and_tokens_from_secrets_and_envoy_verifies_them(objects):
    """The security wiring (docs/security.md): both listeners of the server get their certificate and key, and the
    tokens file, from mounted Secrets the kind overlay generates; Envoy reaches both over TLS verified against the CA
    Secret it mounts and the headless Service's name, which the certificate scripts/kind-secrets.sh makes holds."""
    dep = find(objects, "Deployment", "inference-server")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = dict(a[2:].split("=", 1) for a in c["args"])
    for flag, secret in [("grpc-tls-cert", "inference-server-tls"), ("grpc-tls-key", "inference-server-tls"),
                         ("http-tls-cert", "inference-server-tls"), ("http-tls-key", "inference-server-tls"),
                         ("auth-tokens-file", "inference-tokens")]:
        assert mounted(pod, c, args[flag]) == secret, flag
        key = args[flag].rsplit("/", 1)[1]
        assert key in find(objects, "Secret", secret)["data"], (secret, key)
    assert args["model-control-mode"] == "none"

    envoy_pod = find(objects, "Deployment", "envoy")["spec"]["template"]["spec"]
    (envoy_c,) = envoy_pod["containers"]
    envoy = yaml.safe_load(find(objects, "ConfigMap", next(
        o["metadata"]["name"] for o in objects if o["metadata"]["name"].startswith("envoy-config")))["data"]["envoy.yaml"])
    names = set()
    for cluster in inference_clusters(envoy):
        tls = cluster["transport_socket"]["typed_config"]
        assert tls["@type"].endswith("UpstreamTlsContext")
        validation = tls["common_tls_context"]["validation_context"]
        assert mounted(envoy_pod, envoy_c, validation["trusted_ca"]["filename"]) == "inference-server-ca"
        names |= {m["matcher"]["exact"] for m in validation["match_typed_subject_alt_names"]}
        assert tls["common_tls_context"]["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    assert names == {"inference-server-headless"}

    import base64
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(base64.b64decode(find(objects, "Secret", "inference-server-tls")["data"]
                                                           ["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(find(objects, "Secret", "inference-server-ca")["data"]
                                                         ["ca.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "inference-server-headless" in sans and "inference-server" in sans
    tokens = json.loads(base64.b64decode(find(objects, "Secret", "inference-tokens")["data"]["tokens.json"]))
    assert {t["name"] for t in tokens["tokens"]} == {"client", "admin"}
    assert all("sha256" in t and "token" not in t for t in tokens["tokens"]), "the cluster holds digests only"


def test_the_repository_api_is_not_routed_from_outside(objects):
    envoy = yaml.safe_load((DEPLOY / "k8s" / "base" / "inference" / "envoy.yaml").read_text())
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    blocked = [r for r in routes if "direct_response" in r]
    assert [r["match"] for r in blocked] == [{"path_separated_prefix": "/v2/repository"},
                                             {"prefix": "/inference.GRPCInferenceService/Repository"}]
    assert routes.index(blocked[-1]) < min(routes.index(r) for r in routes if "route" in r), "before any route"


def test_spans_of_envoy_and_the_servers_reach_the_trace_store_grafana_reads(objects):
    """Tracing's wiring (docs/metrics.md#tracing): Envoy's tracer exports OTLP/gRPC and the servers OTLP/HTTP to the
    jaeger Service's ports of those names, which its NetworkPolicy opens to the inference namespace; Grafana's
    Jaeger data source reads its query port, and Loki's derived field links a log line's trace_id to it."""
    jaeger = find(objects, "Service", "jaeger")
    assert jaeger["metadata"]["namespace"] == "monitoring"
    ports = {p["name"]: p["port"] for p in jaeger["spec"]["ports"]}
    host = "jaeger.monitoring.svc.cluster.local"
    envoy = yaml.safe_load(find(objects, "ConfigMap", next(
        o["metadata"]["name"] for o in objects if o["metadata"]["name"].startswith("envoy-config")))["data"]["envoy.yaml"])
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    tracer = hcm["tracing"]["provider"]["typed_config"]
    assert tracer["@type"].endswith("OpenTelemetryConfig")
    (otel,) = [c for c in envoy["static_resources"]["clusters"] if c["name"] == tracer["grpc_service"]["envoy_grpc"]["cluster_name"]]
    address = otel["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == (host, ports["otlp-grpc"])
    (server,) = find(objects, "Deployment", "inference-server")["spec"]["template"]["spec"]["containers"]
    args = dict(a[2:].split("=", 1) for a in server["args"])
    assert args["trace-url"] == f"http://{host}:{ports['otlp-http']}/v1/traces"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in server["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "NODE_NAME": "spec.nodeName"}
    policy = find(objects, "NetworkPolicy", "jaeger")
    (otlp_rule,) = [r for r in policy["spec"]["ingress"] if {"port": 4318, "protocol": "TCP"} in r["ports"]]
    assert {p["port"] for p in otlp_rule["ports"]} == {ports["otlp-grpc"], ports["otlp-http"]}
    assert otlp_rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                                 for ns in ("inference", "ingress-nginx")]
    datasources = yaml.safe_load(next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"]
                                      .startswith("grafana-datasources"))["data"]["datasources.yml"])["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    assert by_uid["jaeger"]["type"] == "jaeger" and by_uid["jaeger"]["url"] == f"http://jaeger:{ports['query']}"
    (derived,) = by_uid["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "jaeger" and derived["url"] == "$${__value.raw}"
    assert by_uid["jaeger"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
