"""A real OpenTelemetry Collector on loopback (tools/otelcol: the collector's own OTLP receiver and file
exporter, built from its Go modules by install-deps), for the tracing tests and benchmarks: spans arrive over
OTLP/HTTP or OTLP/gRPC and are written as OTLP JSON lines, which `spans()` reads back."""
import json
import pathlib
import shutil
import subprocess
import time

import requests

from conftest import ROOT
from ports import free_port

OTELCOL = shutil.which("otelcol") or str(ROOT / ".deps" / "bin" / "otelcol")

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc_port}"}}
      http: {{endpoint: "127.0.0.1:{http_port}"}}
exporters:
  file:
    path: {path}
    flush_interval: 50ms
service:
  telemetry:
    logs: {{level: warn}}
    metrics: {{level: none}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
"""


class Collector:
    def __init__(self, tmp):
        tmp = pathlib.Path(tmp)
        self.grpc_port, self.http_port = free_port(), free_port()
        self.path = tmp / f"spans-{self.http_port}.jsonl"
        config = tmp / f"otelcol-{self.http_port}.yaml"
        config.write_text(CONFIG.format(grpc_port=self.grpc_port, http_port=self.http_port, path=self.path))
        self.log_path = tmp / f"otelcol-{self.http_port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([OTELCOL, "--config", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        self.traces_url = f"http://127.0.0.1:{self.http_port}/v1/traces"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        deadline = time.time() + 30
        while True:  # ready once its HTTP receiver answers (an empty export is a valid one)
            assert self.proc.poll() is None, f"otelcol exited:\n{self.log_path.read_text()}"
            try:
                if requests.post(self.traces_url, json={}, timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, f"otelcol not ready:\n{self.log_path.read_text()}"
            time.sleep(0.1)

    def spans(self):
        """Every span received so far: each a dict of the OTLP JSON span with `service` (its resource's
        service.name) and `resource` (all its resource attributes) added."""
        out = []
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            for rs in json.loads(line).get("resourceSpans", []):
                resource = {a["key"]: next(iter(a["value"].values())) for a in rs["resource"].get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        out.append({**span, "service": resource.get("service.name"), "resource": resource})
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def attributes(span):
    """A span's attributes as {key: value} (int64 values, strings in OTLP JSON, as ints)."""
    out = {}
    for a in span.get("attributes", []):
        (kind, value), = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out
