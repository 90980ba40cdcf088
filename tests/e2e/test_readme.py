"""The README's examples, run as written against a server serving the bundled repository: every bash block
of the Examples section and its Python block, with the default ports (8080, 50051) replaced by free ones,
and each output checked against the sample output the README shows under the command."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import MODELS, ROOT, Server

README = (ROOT / "README.md").read_text()
EXAMPLES = README.split("## Examples", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    # The bundled repository, as `make run` serves it, on free ports.
    s = Server(MODELS, tmp_path=tmp_path_factory.mktemp("readme"))
    s.wait_ready()
    yield s
    assert s.stop() == 0


def on_ports(text, server):
    return text.replace("localhost:8080", f"localhost:{server.http_port}").replace(
        "localhost:50051", f"localhost:{server.grpc_port}")


def sample_keys(script):
    """JSON keys in the sample output lines (`# {...}`) the README shows."""
    return {k for line in script.splitlines() if line.startswith("# {") for k in re.findall(r'"(\w+)":', line)}


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", EXAMPLES, re.S)


@pytest.mark.parametrize("index", range(len(blocks("bash"))))
def test_readme_shell_examples(default_server, index):
    script = on_ports(blocks("bash")[index], default_server)
    env = dict(os.environ, PATH=f"{ROOT / '.deps' / 'bin'}:{os.environ['PATH']}")
    if "grpcurl" in script and not shutil.which("grpcurl", path=env["PATH"]):
        pytest.skip("grpcurl not built (scripts/install-deps.sh builds it)")
    out = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), script
    assert "error" not in out.stdout.lower() or '"error"' not in out.stdout, out.stdout
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            assert '"code"' not in line, line  # no google.rpc.Status error bodies
    for key in sample_keys(script):  # what the README shows is what comes back
        assert f'"{key}"' in out.stdout, (key, out.stdout[:500])
    for sample in [l for l in script.splitlines() if l.startswith("# {")]:
        for pair in re.findall(r'"\w+":"[^"…]+"', sample):  # exact string fields: "label":"malignant"
            assert pair in out.stdout, (pair, out.stdout[:500])
        for prefix in re.findall(r"\[([0-9.]+)…", sample):  # numbers the README shows cut: [187.72…]
            assert "[" + prefix in out.stdout, (prefix, out.stdout[:500])


def test_readme_python_example(default_server):
    out = subprocess.run([sys.executable, "-c", on_ports(blocks("python")[0], default_server)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"\[\[[0-9. e+-]+\]\]", out.stdout), out.stdout
