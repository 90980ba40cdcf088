"""The README's examples, run as written: a server on the default ports (8080, 50051), then every bash block
of the Examples section and its Python block. Skipped only when those ports are already taken."""
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import MODELS, ROOT, Server

README = (ROOT / "README.md").read_text()
EXAMPLES = README.split("## Examples", 1)[1].split("\n## ", 1)[0]


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    if not all(port_free(p) for p in (8080, 50051)):
        pytest.skip("ports 8080/50051 are in use")
    # The bundled repository on the default ports, as `make run` serves it.
    s = Server(MODELS, tmp_path=tmp_path_factory.mktemp("readme"), grpc_port=50051, http_port=8080)
    s.wait_ready()
    yield s
    assert s.stop() == 0


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", EXAMPLES, re.S)


@pytest.mark.parametrize("index", range(len(blocks("bash"))))
def test_readme_shell_examples(default_server, index):
    script = blocks("bash")[index]
    env = dict(os.environ, PATH=f"{ROOT / '.deps' / 'bin'}:{os.environ['PATH']}")
    if "grpcurl" in script and not shutil.which("grpcurl", path=env["PATH"]):
        pytest.skip("grpcurl not built here (no Go toolchain)")
    out = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), script
    assert "error" not in out.stdout.lower() or '"error"' not in out.stdout, out.stdout
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            assert '"code"' not in line, line  # no google.rpc.Status error bodies


def test_readme_python_example(default_server):
    out = subprocess.run([sys.executable, "-c", blocks("python")[0]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"\[\[[0-9. e+-]+\]\]", out.stdout), out.stdout
