"""What the reliability benchmarks (soak, capacity, overload, large_body) share: free loopback ports, starting this
server and waiting until it is ready, its RSS and descriptors from /proc, and reading a Prometheus counter."""
import os
import pathlib
import subprocess
import sys
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARY = os.environ.get("INFERENCE_SERVER", str(ROOT / "build" / "inference-server"))

sys.path.insert(0, str(ROOT / "tests"))
from ports import free_port  # noqa: E402,F401 (the benchmarks import it from here)


class Server:
    """This server on free loopback ports: `http`, `grpc_target`, `metrics` URLs; `stop()` returns its exit code."""

    def __init__(self, repository, *extra, log=None, binary=BINARY, timeout=60):
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.metrics = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.proc = subprocess.Popen(
            [binary, "--model-repository", str(repository), "--host", "127.0.0.1", "--http-port", str(self.http_port),
             "--grpc-port", str(self.grpc_port), "--metrics-port", str(self.metrics_port), *map(str, extra)],
            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.time() + timeout
        while not self.ready():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not become ready (exit code {self.proc.poll()})")
            time.sleep(0.1)

    def ready(self):
        try:
            return requests.get(self.http + "/v2/health/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def state(self):
        return process_state(self.pid)

    def metrics_text(self):
        return requests.get(self.metrics, timeout=10).text

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def process_state(pid):
    """RSS and its high-water mark (MiB), open descriptors and CPU seconds (user + system) of a process."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": fields["VmRSS"], "hwm_mib": fields["VmHWM"], "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "cpu_s": round(cpu, 2)}


def metric_sum(text, name, **labels):
    """The sum of a Prometheus metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
