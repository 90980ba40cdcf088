"""config.pbtxt in NVIDIA Triton's ModelConfig schema (docs/model-repository.md): configs written the way
Triton's documentation shows them load and serve here; Triton fields this server does not implement are
named at load (a warning when they cannot change results, a load error when they would); and the bundled
repository parses with Triton's own schema (tritonclient ships Triton's compiled model_config.proto)."""
import pathlib

import numpy as np
import pytest
import requests
import tritonclient.http as thttp
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as triton_model_config

from conftest import MODELS, answers, wait_for

# As Triton's model configuration guide writes them (ONNX Runtime platform, instance groups, the dynamic
# batcher, the ONNX Runtime backend's parameters, an optimization and a warm-up block).
DOC_BATCHING = """
name: "doc_batching"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "INPUT0"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
instance_group [
  {
    count: 2
    kind: KIND_CPU
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
}
optimization { execution_accelerators {
  cpu_execution_accelerator : [ {
    name : "openvino"
  } ]
}}
model_warmup [
  {
    name : "zero"
    batch_size: 1
    inputs {
      key: "INPUT0"
      value: {
        data_type: TYPE_FP32
        dims: [ 16 ]
        zero_data: true
      }
    }
  }
]
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
parameters { key: "execution_mode" value: { string_value: "0" } }
"""

# No batch dimension: dims are the whole shape.
DOC_NO_BATCHING = """
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {
    name: "INPUT0"
    data_type: TYPE_FP32
    dims: [ 2, 16 ]
  }
]
version_policy: { all { }}
metric_tags { key: "dims" value: "not a number" }
"""

REFUSED = {
    "doc_sequence": ("sequence_batching {\n  max_sequence_idle_microseconds: 5000000\n}\n", "sequence_batching"),
    "doc_ensemble": ('ensemble_scheduling {\n  step [ { model_name: "a" model_version: -1 } ]\n}\n',
                     "ensemble_scheduling"),
    "doc_gpu": ("instance_group [ { count: 1 kind: KIND_GPU } ]\n", "GPU"),
    "doc_decoupled": ("model_transaction_policy { decoupled: True }\n", "decoupled"),
    "typo": ("max_batch_size: 8\nmax_batch_sise: 8\n", "max_batch_sise"),
    "wrong_dims": ('max_batch_size: 8\ninput [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 15 ] } ]\n', "INPUT0"),
}


def identity(repository, name, shape, config, versions=(1,)):
    """An ONNX model whose OUTPUT0 is its INPUT0 (Triton's documentation names), with `config` as written."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])], "g",
                              [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for v in versions:
        (repository / name / str(v)).mkdir(parents=True)
        onnx.save(model, str(repository / name / str(v) / "model.onnx"))
    (repository / name / "config.pbtxt").write_text(config)


def test_configs_written_as_tritons_documentation_shows_them_load_and_serve(tmp_path, make_server):
    repo = tmp_path / "repo"
    identity(repo, "doc_batching", [None, 16], DOC_BATCHING)
    identity(repo, "doc_no_batching", [2, 16], DOC_NO_BATCHING, versions=(1, 2))
    s = make_server(repo)
    client = thttp.InferenceServerClient(s.http.removeprefix("http://"))

    x = np.arange(8 * 16, dtype=np.float32).reshape(8, 16)
    inp = thttp.InferInput("INPUT0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    np.testing.assert_array_equal(client.infer("doc_batching", [inp]).as_numpy("OUTPUT0"), x)
    # max_batch_size bounds the batch dimension.
    nine = np.zeros((9, 16), np.float32)
    r = requests.post(s.http + "/v2/models/doc_batching/infer", json={"inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": [9, 16], "data": nine.ravel().tolist()}]})
    assert r.status_code == 400 and "max_batch_size" in r.text, r.text

    y = x[:2]
    inp = thttp.InferInput("INPUT0", [2, 16], "FP32")
    inp.set_data_from_numpy(y)
    for version in ("1", "2"):  # version_policy all
        np.testing.assert_array_equal(
            client.infer("doc_no_batching", [inp], model_version=version).as_numpy("OUTPUT0"), y)

    # The configuration answer prints map values as they are, even under a key that names an integer field.
    config = requests.get(s.http + "/v2/models/doc_no_batching/config").json()
    assert config["metric_tags"] == {"dims": "not a number"} and config["input"][0]["dims"] == [2, 16]

    # Fields that cannot change results are named in the log and ignored.
    ignored = {(l.get("model"), l.get("field")) for l in s.log_lines() if l.get("msg") == "model config field ignored"}
    for field in ("optimization", "model_warmup", "parameters['execution_mode']"):
        assert ("doc_batching", field) in ignored, ignored
    assert ("doc_batching", "dynamic_batching") not in ignored, "the dynamic batcher honours it"


def test_triton_fields_that_would_change_results_refuse_the_model_and_say_why(tmp_path, make_server):
    repo = tmp_path / "repo"
    identity(repo, "ok", [None, 16], 'platform: "onnxruntime_onnx"\nmax_batch_size: 8\n')
    for name, (config, _) in REFUSED.items():
        identity(repo, name, [None, 16], config)
    s = make_server(repo, ready=False)
    wait_for(lambda: answers(s.http + "/v2/models/ok/ready"), what="model ok ready")
    models = {m["name"]: m for m in requests.get(s.http + "/v1/models").json()["models"]}
    for name, (_, named) in REFUSED.items():
        reason = models[name].get("error") or " ".join(v["reason"] for v in models[name].get("versions", []))
        assert named in reason, (name, models[name])
    assert requests.get(s.http + "/v2/health/ready").status_code == 503  # not every model loaded


@pytest.mark.parametrize("config", sorted(MODELS.glob("*/config.pbtxt")), ids=lambda p: p.parent.name)
def test_the_bundled_repository_parses_with_tritons_own_schema(config):
    """Triton's compiled ModelConfig (from tritonclient) parses each bundled config strictly: no field of ours."""
    parsed = text_format.Parse(config.read_text(), triton_model_config.ModelConfig())
    assert parsed.platform == "onnxruntime_onnx" and parsed.max_batch_size > 0
    for out in parsed.output:
        if out.label_filename:
            assert (config.parent / out.label_filename).is_file()


@pytest.mark.parametrize("config", [DOC_BATCHING, DOC_NO_BATCHING] + [c for c, _ in REFUSED.values()][:4])
def test_the_documentation_style_configs_here_are_valid_for_triton(config):
    """The configs above are Triton's schema (so the test is about Triton's format, not ours)."""
    text_format.Parse(config, triton_model_config.ModelConfig())


def _ints(node):
    """protobuf's JSON mapping quotes 64-bit integers; Triton's REST form has numbers."""
    if isinstance(node, dict):
        return {k: _ints(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_ints(v) for v in node]
    if isinstance(node, str) and node.lstrip("-").isdigit():
        return int(node)
    return node


def test_model_configuration_extension_over_rest_and_grpc(server):
    """GET /v2/models/{m}/config and the ModelConfig call answer the loaded config in Triton's shape, completed
    from the model file; tritonclient decodes the gRPC answer with Triton's own schema."""
    import tritonclient.grpc as tgrpc
    from google.protobuf.json_format import MessageToDict

    assert "model_configuration" in requests.get(server.http + "/v2").json()["extensions"]
    rest = requests.get(server.http + "/v2/models/breast_cancer/config").json()
    assert rest["name"] == "breast_cancer" and rest["platform"] == "onnxruntime_onnx"
    assert rest["backend"] == "onnxruntime" and rest["max_batch_size"] == 1024
    assert rest["input"][0]["name"] == "X" and rest["input"][0]["data_type"] == "TYPE_FP32"
    assert rest["input"][0]["dims"] == [30]  # numbers, without the batch dimension
    outputs = {o["name"]: o for o in rest["output"]}
    assert outputs["probabilities"]["label_filename"] == "labels.txt" and outputs["probabilities"]["dims"] == [2]
    assert outputs["label"]["data_type"] == "TYPE_INT64"  # not declared: completed from the model
    assert rest["instance_group"][0]["count"] == 2 and rest["instance_group"][0]["kind"] == "KIND_CPU"
    assert requests.get(server.http + "/v2/models/breast_cancer/versions/1/config").json() == rest

    client = tgrpc.InferenceServerClient(server.grpc_target)
    grpc_config = client.get_model_config("breast_cancer").config  # Triton's ModelConfig message
    assert grpc_config.platform == "onnxruntime_onnx" and list(grpc_config.input[0].dims) == [30]
    assert grpc_config.instance_group[0].kind == triton_model_config.ModelInstanceGroup.KIND_CPU
    as_dict = _ints(MessageToDict(grpc_config, preserving_proto_field_name=True,
                                  always_print_fields_with_no_presence=True))
    for key, value in as_dict.items():
        assert rest[key] == value, key
    assert thttp.InferenceServerClient(server.http.removeprefix("http://")).get_model_config("breast_cancer") == rest

    r = requests.get(server.http + "/v2/models/nope/config")
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_statistics_extension_counts_every_phase_over_rest_and_grpc(tmp_path, make_server):
    """/v2/models/{m}/stats and ModelStatistics: Triton's cumulative counts per phase and per batch size."""
    import shutil

    import tritonclient.grpc as tgrpc

    repo = tmp_path / "repo"
    shutil.copytree(MODELS, repo)
    s = make_server(repo)
    assert "statistics" in requests.get(s.http + "/v2").json()["extensions"]
    x = np.random.default_rng(0).random((4, 64), dtype=np.float32)
    for rows in (1, 2, 2, 4):  # 4 executions, 9 rows
        r = requests.post(s.http + "/v2/models/digits/infer", json={"inputs": [
            {"name": "X", "datatype": "FP32", "shape": [rows, 64], "data": x[:rows].ravel().tolist()}]})
        assert r.status_code == 200, r.text
    bad = requests.post(s.http + "/v2/models/digits/infer", json={"inputs": [
        {"name": "X", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]})
    assert bad.status_code == 400

    (rest,) = requests.get(s.http + "/v2/models/digits/stats").json()["model_stats"]
    assert rest["name"] == "digits" and rest["version"] == "1"
    assert rest["execution_count"] == 4 and rest["inference_count"] == 9
    stats = rest["inference_stats"]
    assert stats["success"]["count"] == 4 and stats["fail"]["count"] == 1
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert stats[phase]["count"] == 4, phase
    for phase in ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output"):
        assert stats[phase]["ns"] > 0, phase
    assert stats["success"]["ns"] >= stats["compute_infer"]["ns"] + stats["queue"]["ns"]
    by_size = {b["batch_size"]: b for b in rest["batch_stats"]}
    assert sorted(by_size) == [1, 2, 4] and by_size[2]["compute_infer"]["count"] == 2
    assert rest["last_inference"] > 1.7e12  # ms since the epoch

    everything = requests.get(s.http + "/v2/models/stats").json()["model_stats"]
    assert sorted(m["name"] for m in everything) == ["breast_cancer", "diabetes", "digits"]
    assert requests.get(s.http + "/v2/models/digits/versions/1/stats").json()["model_stats"] == [rest]
    assert requests.get(s.http + "/v2/models/nope/stats").status_code == 404

    grpc_stats = tgrpc.InferenceServerClient(s.grpc_target).get_inference_statistics("digits", as_json=True)
    (g,) = grpc_stats["model_stats"]
    assert int(g["execution_count"]) == 4 and int(g["inference_count"]) == 9
    assert int(g["inference_stats"]["compute_infer"]["count"]) == 4
    assert int(g["inference_stats"]["compute_infer"]["ns"]) == stats["compute_infer"]["ns"]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_runs_unchanged_with_the_server_side_breakdown(protocol, tmp_path, make_server):
    """Triton's own load tool, as users run it: no shape hints (it reads the model configuration) and the
    server-side breakdown from the statistics extension. Bounded: one concurrency, a few hundred requests."""
    import csv
    import shutil
    import subprocess

    tool = shutil.which("perf_analyzer")
    assert tool, "perf_analyzer is installed by scripts/install-deps.sh test into .deps/bin"
    repo = tmp_path / "repo"
    shutil.copytree(MODELS, repo)
    s = make_server(repo)
    url = s.grpc_target if protocol == "grpc" else s.http.removeprefix("http://")
    out = tmp_path / "perf.csv"
    run = subprocess.run([tool, "-m", "breast_cancer", "-u", url, "-i", protocol, "--concurrency-range", "2",
                          "--measurement-mode", "count_windows", "--measurement-request-count", "200",
                          "--stability-percentage", "999", "--max-trials", "3", "-f", str(out), "--verbose-csv"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Server:" in run.stdout and "compute infer" in run.stdout, run.stdout[-3000:]
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["Inferences/Second"]) > 0
    assert int(row["Server Compute Infer"]) > 0, row
    (stats,) = requests.get(s.http + "/v2/models/breast_cancer/stats").json()["model_stats"]
    assert stats["execution_count"] >= 200 and stats["inference_stats"]["fail"]["count"] == 0


def test_tritons_metric_names_say_what_the_statistics_say(tmp_path, make_server):
    """nv_inference_* counters (dashboards written for Triton) equal the statistics extension's numbers."""
    import shutil

    from conftest import metric_sum

    repo = tmp_path / "repo"
    shutil.copytree(MODELS, repo)
    s = make_server(repo)
    x = np.random.default_rng(1).random((3, 30), dtype=np.float32)
    for rows in (1, 3):
        r = requests.post(s.http + "/v2/models/breast_cancer/infer", json={"inputs": [
            {"name": "X", "datatype": "FP32", "shape": [rows, 30], "data": x[:rows].ravel().tolist()}]})
        assert r.status_code == 200, r.text
    bad = requests.post(s.http + "/v2/models/breast_cancer/infer", json={"inputs": [
        {"name": "X", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]})
    assert bad.status_code == 400
    (stats,) = requests.get(s.http + "/v2/models/breast_cancer/stats").json()["model_stats"]
    text = s.metrics_text()

    def nv(name, **labels):
        return metric_sum(text, name, model="breast_cancer", version="1", **labels)

    assert nv("nv_inference_request_success") == 2
    assert nv("nv_inference_request_failure", reason="OTHER") == 1
    assert nv("nv_inference_request_failure", reason="REJECTED") == 0
    assert nv("nv_inference_count") == 4 and nv("nv_inference_exec_count") == 2
    phases = stats["inference_stats"]
    for metric, phase in [("nv_inference_request_duration_us", "success"), ("nv_inference_queue_duration_us", "queue"),
                          ("nv_inference_compute_input_duration_us", "compute_input"),
                          ("nv_inference_compute_infer_duration_us", "compute_infer"),
                          ("nv_inference_compute_output_duration_us", "compute_output")]:
        assert nv(metric) == pytest.approx(phases[phase]["ns"] / 1e3, abs=1e-3), metric
    assert nv("nv_inference_pending_request_count") == 0
    assert 0 < nv("nv_model_load_duration_secs") < 60


def test_explicit_model_control(tmp_path, make_server):
    """Triton's repository extension: load/unload over REST and gRPC (tritonclient), in explicit mode with every
    model loaded at startup (--load-model '*')."""
    import shutil

    import tritonclient.grpc as tgrpc
    from tritonclient.utils import InferenceServerException

    from conftest import identity_model, metric_sum

    repo = tmp_path / "repo"
    shutil.copytree(MODELS, repo)
    s = make_server(repo, "--model-control-mode", "explicit", "--load-model", "*")
    rest = thttp.InferenceServerClient(s.http.removeprefix("http://"))
    grpc_client = tgrpc.InferenceServerClient(s.grpc_target)

    rest.unload_model("digits")
    assert not rest.is_model_ready("digits")
    assert rest.is_server_ready(), "a model unloaded on request does not make the server unready"
    index = {m["name"]: m for m in rest.get_model_repository_index()}
    assert index["digits"]["state"] == "UNAVAILABLE" and index["digits"]["reason"] == "unloaded by request"
    x = np.zeros((1, 64), np.float32)
    inp = thttp.InferInput("X", [1, 64], "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException):
        rest.infer("digits", [inp])

    grpc_client.load_model("digits")
    assert grpc_client.is_model_ready("digits")
    assert rest.infer("digits", [inp]).as_numpy("probabilities").shape == (1, 10)
    grpc_client.unload_model("digits")
    assert not grpc_client.is_model_ready("digits")
    rest.load_model("digits")
    assert rest.is_model_ready("digits")

    # A model that cannot load says why; unknown models are 404; parameters that would change what loads are refused.
    identity_model(repo, "broken", [None, 2], config="max_batch_size: 4\n")
    (repo / "broken" / "1" / "model.onnx").write_bytes(b"not onnx")
    r = requests.post(s.http + "/v2/repository/models/broken/load")
    assert r.status_code == 400 and "failed to load model 'broken'" in r.json()["error"], r.text
    r = requests.post(s.http + "/v2/repository/models/nope/load")
    assert r.status_code == 404, r.text
    r = requests.post(s.http + "/v2/repository/models/digits/load", json={"parameters": {"config": "{}"}})
    assert r.status_code == 400 and "'config'" in r.json()["error"], r.text
    assert requests.get(s.http + "/v2/repository/models/digits/load").status_code == 405

    text = s.metrics_text()
    assert metric_sum(text, "inference_model_control_requests_total", action="unload", code="OK") == 2
    assert metric_sum(text, "inference_model_control_requests_total", action="load", code="OK") == 2
    assert metric_sum(text, "inference_model_control_requests_total", action="load", code="NOT_FOUND") == 1
    lines = [l for l in s.log_lines() if l.get("msg") == "model control"]
    assert any(l["action"] == "load" and l["model"] == "broken" and l["status"] == "INVALID_ARGUMENT" for l in lines)


def test_explicit_load_picks_up_a_model_added_after_startup(tmp_path, make_server):
    from conftest import identity_model

    repo = tmp_path / "repo"
    identity_model(repo, "first", [None, 2], config="max_batch_size: 4\n")
    s = make_server(repo, "--model-control-mode", "explicit", "--load-model", "first")
    identity_model(repo, "later", [None, 2], config="max_batch_size: 4\n")
    assert requests.get(s.http + "/v2/models/later/ready").status_code == 404
    assert requests.post(s.http + "/v2/repository/models/later/load").status_code == 200
    assert requests.get(s.http + "/v2/models/later/ready").status_code == 200


def test_onnxruntime_threads_never_oversubscribe_the_cores_unless_configured(tmp_path, make_server):
    """Default intra-op threads: the cores shared out among the instances; the numbers are logged at load, and a
    config that asks for more threads than cores is served as configured with a warning."""
    import os

    from conftest import identity_model

    cores = len(os.sched_getaffinity(0))
    repo = tmp_path / "repo"
    identity_model(repo, "one", [None, 2], config="max_batch_size: 4\n")
    identity_model(repo, "two", [None, 2], config="max_batch_size: 4\ninstance_group [ { count: 2 kind: KIND_CPU } ]\n")
    identity_model(repo, "asked", [None, 2], config=(
        "max_batch_size: 4\ninstance_group [ { count: 2 kind: KIND_CPU } ]\n"
        f'parameters {{ key: "intra_op_thread_count" value: {{ string_value: "{cores}" }} }}\n'))
    s = make_server(repo)
    lines = {l["model"]: l for l in s.log_lines() if l.get("msg", "").startswith("onnxruntime threads")}
    assert lines["one"]["intra_op_threads"] == cores and lines["one"]["level"] == "info"
    assert lines["two"]["intra_op_threads"] == max(1, cores // 2)
    assert lines["two"]["instances"] * lines["two"]["intra_op_threads"] <= cores
    assert lines["asked"]["intra_op_threads"] == cores and lines["asked"]["level"] == "warn"
    assert lines["asked"]["msg"] == "onnxruntime threads oversubscribe the cores as configured"
