"""The Grafana dashboards against Grafana's dashboard schema (@grafana/schema, type-checked by tsc)."""
import json
import subprocess

import pytest

from deploy_support import DEPLOY, ROOT

TOOL = ROOT / "tools" / "grafana-schema-check"
DASHBOARDS = sorted((DEPLOY / "k8s" / "base" / "monitoring" / "grafana" / "dashboards").glob("*.json"))


def typecheck(name, text):
    tsc = TOOL / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("run scripts/install-deps.sh test (npm ci in tools/grafana-schema-check)")
    work = TOOL / ".check"
    work.mkdir(exist_ok=True)
    source = work / f"{name}.ts"
    source.write_text('import type { Dashboard } from "@grafana/schema";\n'
                      f"export const dashboard: Dashboard = {text};\n")
    return subprocess.run([str(tsc), "--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "bundler",
                           "--module", "esnext", "--target", "es2022", str(source)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_matches_grafanas_schema(path):
    json.loads(path.read_text())
    out = typecheck(path.stem, path.read_text())
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_check_rejects_unknown_fields_and_wrong_types():
    unknown = json.loads(DASHBOARDS[0].read_text())
    unknown["not_a_field"] = 1
    out = typecheck("unknown", json.dumps(unknown))
    assert out.returncode != 0 and "not_a_field" in out.stdout
    wrong = json.loads(DASHBOARDS[0].read_text())
    wrong["panels"][1]["gridPos"]["w"] = "wide"
    out = typecheck("wrong", json.dumps(wrong))
    assert out.returncode != 0 and "not assignable to type 'number'" in out.stdout
