"""The core counts and times every request itself (docs/architecture.md, docs/metrics.md): the clock starts
when the transport has received the request, a request refused while its body is read is counted like any
other, and a model version's series leave /metrics with the version."""
import json
import shutil

import numpy as np
import requests

from conftest import identity_model, metric_sum, wait_for


def test_a_large_json_bodys_parse_time_is_in_the_input_conversion_histogram(tmp_path, make_server):
    identity_model(tmp_path / "repo", "wide", [-1, 1000])
    server = make_server(tmp_path / "repo")
    rows = np.random.default_rng(0).random((1000, 1000), dtype=np.float32)
    body = json.dumps({"inputs": [{"name": "X", "shape": [1000, 1000], "datatype": "FP32",
                                   "data": rows.ravel().tolist()}],
                       "outputs": [{"name": "Y", "parameters": {"binary_data": True}}]}).encode()
    assert len(body) > 10 << 20  # a body whose parsing takes a while

    before = server.metrics_text()
    r = requests.post(server.http + "/v2/models/wide/infer", data=body, timeout=60)
    assert r.status_code == 200, r.text
    after = server.metrics_text()

    def delta(name, **labels):
        return metric_sum(after, name, model="wide", **labels) - metric_sum(before, name, model="wide", **labels)

    conversion = delta("inference_conversion_duration_seconds_sum", direction="input")
    total = delta("inference_request_duration_seconds_sum")
    assert delta("inference_request_duration_seconds_count") == 1
    # The request's time in the server is mostly parsing 20 MB of JSON (the identity model and the binary
    # reply take a few milliseconds): with the clock started after parsing, input conversion would be a
    # sliver of it.
    assert conversion > 0.5 * total, f"input conversion {conversion:.4f}s of a {total:.4f}s request"


def test_requests_refused_while_their_body_is_read_are_counted_by_the_core(tmp_path, make_server):
    identity_model(tmp_path / "repo", "m", [-1, 2])
    server = make_server(tmp_path / "repo")
    refused = [
        ({"Inference-Header-Content-Length": "twelve"}, "Inference-Header-Content-Length"),
        ({"Content-Encoding": "gzip"}, "Content-Encoding"),
    ]
    before = metric_sum(server.metrics_text(), "inference_requests_total", protocol="http-v2",
                        code="INVALID_ARGUMENT")
    for headers, named in refused:
        r = requests.post(server.http + "/v2/models/m/infer", data=b"{}", headers=headers, timeout=5)
        assert r.status_code == 400 and named in r.json()["error"], r.text
    after = metric_sum(server.metrics_text(), "inference_requests_total", protocol="http-v2",
                       code="INVALID_ARGUMENT")
    assert after - before == len(refused)
    logged = [line for line in server.log_lines() if line.get("msg") == "request" and line.get("protocol") == "http-v2"]
    assert sum(1 for line in logged if "Content-Encoding" in line.get("error", "") or
               "Inference-Header-Content-Length" in line.get("error", "")) == len(refused)


def test_a_retired_versions_series_leave_metrics(tmp_path, make_server):
    repo = tmp_path / "repo"
    identity_model(repo, "m", [-1, 2])
    server = make_server(repo, "--model-control-mode", "poll", "--repository-poll-ms", "100")
    body = {"inputs": [{"name": "X", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    assert requests.post(server.http + "/v2/models/m/infer", json=body, timeout=5).status_code == 200
    text = server.metrics_text()
    assert metric_sum(text, "inference_requests_total", model="m", version="1") == 1
    assert metric_sum(text, "inference_request_duration_seconds_count", model="m", version="1") == 1

    # Version 2 replaces version 1 (the default policy serves the latest): version 1's request series go,
    # its state stays while its files are there.
    shutil.copytree(repo / "m" / "1", repo / "m" / "2")
    wait_for(lambda: 'inference_request_duration_seconds_count{model="m",version="1"}' not in server.metrics_text(),
             what="version 1's latency series to go")
    text = server.metrics_text()
    for name in ("inference_requests_total", "inference_queue_duration_seconds_count",
                 "inference_compute_duration_seconds_count", "inference_conversion_duration_seconds_count",
                 "inference_rows_total", "inference_queue_depth"):
        assert f'version="1"' not in "\n".join(l for l in text.splitlines() if l.startswith(name + "{")), name
    assert metric_sum(text, "inference_model_state", model="m", version="1", state="UNAVAILABLE") == 1
    assert metric_sum(text, "inference_model_state", model="m", version="2", state="READY") == 1

    # Its files gone, the repository forgets it and so does /metrics.
    shutil.rmtree(repo / "m" / "1")
    wait_for(lambda: 'version="1"' not in server.metrics_text(), what="every version 1 series to go")
    assert requests.post(server.http + "/v2/models/m/infer", json=body, timeout=5).status_code == 200
    assert metric_sum(server.metrics_text(), "inference_requests_total", model="m", version="2") == 1
