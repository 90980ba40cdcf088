"""Tree ensembles served by the trees backend: LightGBM text and XGBoost JSON files (models/trees, made by
models/trees/make_trees.py) loaded as the libraries saved them. The server's predictions and raw margins must
equal the library's own predict() (lightgbm / xgboost from PyPI) within 1e-6 relative, on every row of the
training data plus rows with NaN, +-inf, values exactly on (and next to) each split threshold and, for the
categorical model, categories out of range. Over v2 gRPC, v2 REST (binary data), /v1 gRPC; one request per row
under dynamic batching; and a repository written for Triton's FIL backend."""
import concurrent.futures
import json
import pathlib
import shutil
import sys

import grpc
import numpy as np
import pytest
import requests

from conftest import ROOT, wait_for

TREES = ROOT / "models" / "trees"
sys.path.insert(0, str(TREES))
import make_trees  # noqa: E402

import lightgbm  # noqa: E402
import xgboost  # noqa: E402

RTOL = 1e-6


def thresholds(name):
    """(feature, threshold) of the numerical splits in the model file, as the library wrote them."""
    path = make_trees.file_of(name)
    pairs = []
    if path.suffix == ".txt":
        tree = {}
        for line in path.read_text().splitlines() + ["Tree=end"]:
            key, _, value = line.partition("=")
            if key == "Tree" and tree.get("split_feature"):
                for f, t, d in zip(tree["split_feature"].split(), tree["threshold"].split(),
                                   tree["decision_type"].split()):
                    if not int(d) & 1:  # numerical
                        pairs.append((int(f), float(t)))
                tree = {}
            elif key in ("split_feature", "threshold", "decision_type"):
                tree[key] = value
    else:
        text = path.read_text() if path.suffix == ".json" else xgboost.Booster(model_file=str(path)).save_raw("json")
        model = json.loads(text)["learner"]["gradient_booster"]["model"]
        for t in model["trees"]:
            for left, f, c in zip(t["left_children"], t["split_indices"], t["split_conditions"]):
                if left != -1:
                    pairs.append((f, c))
    return pairs


def hostile_rows(name, x):
    """Rows the training data does not hold: NaN and +-inf per column, values on and beside thresholds, and
    for the categorical models categories the library never saw."""
    base = np.nanmedian(x, axis=0).astype(np.float32)
    rows = []
    # XGBoost refuses infinities (so does the server for its models: test_xgboost_models_refuse_infinities).
    infinities = (np.inf, -np.inf) if make_trees.MODELS[name][0] == "lightgbm" else ()
    for j in range(x.shape[1]):
        for v in (np.nan, *infinities, 0.0, -0.0, 3e38, -3e38, 1e-40):
            r = base.copy()
            r[j] = v
            rows.append(r)
    pairs = thresholds(name)
    for f, t in pairs[:: max(1, len(pairs) // 150)]:
        on = np.float32(t)
        for v in (on, np.nextafter(on, np.float32(np.inf)), np.nextafter(on, np.float32(-np.inf))):
            r = base.copy()
            r[f] = v
            rows.append(r)
    if name in ("lgb_categorical", "xgb_categorical"):
        for v in (-1, -0.5, 0.5, 39.5, 40, 63, 64, 1000, 2 ** 24 - 1, 2 ** 24, 2 ** 31, 1e20, -1e20):
            for j in (0, 1):
                r = base.copy()
                r[j] = v
                rows.append(r)
    return np.array(rows, dtype=np.float32)


def rows_of(name):
    x, _ = make_trees.MODELS[name][1]()
    x = np.asarray(x, dtype=np.float32)
    return np.concatenate([x, hostile_rows(name, x)])


def expected(name, x):
    """(prediction, margin) from the library, each [rows, width]."""
    path = str(make_trees.file_of(name))
    if make_trees.MODELS[name][0] == "lightgbm":
        booster = lightgbm.Booster(model_file=path)
        return booster.predict(x), booster.predict(x, raw_score=True)
    booster = xgboost.Booster(model_file=path)
    best = booster.attr("best_iteration")
    span = (0, int(best) + 1) if best is not None else (0, 0)
    types = booster.feature_types
    categorical = bool(types) and "c" in types
    d = xgboost.DMatrix(x, feature_types=types if categorical else None, enable_categorical=categorical)
    return booster.predict(d, iteration_range=span), booster.predict(d, iteration_range=span, output_margin=True)


def column(a):
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)


def assert_same(got, want, what):
    got, want = column(got), column(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, the library's {want.shape}"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=what)


@pytest.fixture(scope="module")
def trees_server(tmp_path_factory):
    """Every model of models/trees under a minimal config (backend and batch size only), and a copy of two of
    them with dynamic batching."""
    from conftest import Server

    repo = tmp_path_factory.mktemp("trees")
    for name in make_trees.MODELS:
        (repo / name / "1").mkdir(parents=True)
        shutil.copy(make_trees.file_of(name), repo / name / "1")
        (repo / name / "config.pbtxt").write_text('backend: "trees"\nmax_batch_size: 8192\n')
    for name in ("lgb_multiclass", "xgb_binary"):
        batched = repo / f"{name}_batched"
        shutil.copytree(repo / name, batched)
        (batched / "config.pbtxt").write_text(
            'backend: "trees"\nmax_batch_size: 64\ndynamic_batching { max_queue_delay_microseconds: 20000 }\n')
    s = Server(repo, tmp_path=tmp_path_factory.mktemp("log")).wait_ready()
    yield s
    assert s.stop() == 0, s.log_text()[-4000:]


def test_each_load_logs_the_forest_and_how_it_is_evaluated(trees_server):
    """The load log line says what was loaded and how the evaluator laid it out: packed, its nodes, its
    deepest walk, and the splits the reference rule decides (LightGBM categorical and missing_type Zero)."""
    loaded = {l["model"]: l for l in trees_server.log_lines() if l.get("msg") == "tree model loaded"}
    assert set(make_trees.MODELS) <= set(loaded), sorted(loaded)
    for name in make_trees.MODELS:
        line = loaded[name]
        assert line["evaluator"] == "packed", line
        assert line["trees"] > 0 and line["nodes"] >= line["trees"] and line["max_depth"] > 0, line
    assert loaded["lgb_categorical"]["special_splits"] > 0, loaded["lgb_categorical"]
    assert loaded["lgb_zero_as_missing"]["special_splits"] > 0, loaded["lgb_zero_as_missing"]
    assert loaded["xgb_categorical"]["special_splits"] > 0, loaded["xgb_categorical"]
    assert loaded["xgb_binary"]["special_splits"] == 0, loaded["xgb_binary"]


def test_xgboost_models_refuse_infinities_as_xgboost_does(trees_server):
    import tritonclient.grpc as tg
    from tritonclient.utils import InferenceServerException

    x = rows_of("xgb_binary")[:3]
    x[1, 4] = np.inf
    with pytest.raises(InferenceServerException, match="element 34 is infinite"):
        grpc_infer(trees_server, "xgb_binary", x)
    with pytest.raises(xgboost.core.XGBoostError, match="inf"):
        expected("xgb_binary", x)
    assert tg  # the client the server was asked with


def grpc_infer(server, model, x, outputs=("output__0", "margin")):
    import tritonclient.grpc as tg

    client = tg.InferenceServerClient(server.grpc_target)
    inp = tg.InferInput("input__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp], outputs=[tg.InferRequestedOutput(o) for o in outputs])
    return [result.as_numpy(o) for o in outputs]


@pytest.mark.parametrize("name", list(make_trees.MODELS))
def test_v2_grpc_predictions_equal_the_library(trees_server, name):
    x = rows_of(name)
    want_pred, want_margin = expected(name, x)
    pred, margin = grpc_infer(trees_server, name, x)
    assert_same(pred, want_pred, f"{name} prediction")
    assert_same(margin, want_margin, f"{name} margin")


@pytest.mark.parametrize("name", ["lgb_binary", "lgb_categorical", "xgb_multiclass", "xgb_nan"])
def test_v2_rest_binary_predictions_equal_the_library(trees_server, name):
    import tritonclient.http as th

    x = rows_of(name)
    want_pred, want_margin = expected(name, x)
    client = th.InferenceServerClient(f"127.0.0.1:{trees_server.http_port}")
    inp = th.InferInput("input__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    outs = [th.InferRequestedOutput(o, binary_data=True) for o in ("output__0", "margin")]
    result = client.infer(name, [inp], outputs=outs)
    assert_same(result.as_numpy("output__0"), want_pred, f"{name} prediction over REST")
    assert_same(result.as_numpy("margin"), want_margin, f"{name} margin over REST")


@pytest.mark.parametrize("name", ["lgb_regression", "xgb_softmax"])
def test_v1_rows_by_value_and_by_feature_name(trees_server, name):
    from inference.v1 import inference_pb2, inference_pb2_grpc

    x, _ = make_trees.MODELS[name][1]()
    x = np.asarray(x, dtype=np.float32)[:50]
    want_pred, want_margin = expected(name, x)
    stub = inference_pb2_grpc.InferenceServiceStub(grpc.insecure_channel(trees_server.grpc_target))
    by_value = inference_pb2.InferRequest(model=name, rows=[inference_pb2.Row(values=r.tolist()) for r in x])
    # The feature names come from the model file (LightGBM's Column_i, XGBoost's f_i when it recorded none).
    meta = requests.get(f"{trees_server.http}/v1/models", timeout=5).json()["models"]
    names = next(m for m in meta if m["name"] == name)["feature_names"]
    assert len(names) == x.shape[1]
    by_name = inference_pb2.InferRequest(
        model=name, rows=[inference_pb2.Row(features=dict(zip(names, map(float, r)))) for r in x])
    for request in (by_value, by_name):
        reply = stub.Infer(request, timeout=10)
        pred = [p.outputs["output__0"].values for p in reply.predictions]
        margin = [p.outputs["margin"].values for p in reply.predictions]
        assert_same(pred, want_pred, f"{name} prediction over /v1")
        assert_same(margin, want_margin, f"{name} margin over /v1")


@pytest.mark.parametrize("name", ["lgb_multiclass", "xgb_binary"])
def test_one_row_per_request_under_dynamic_batching(trees_server, name):
    x = rows_of(name)[:256]
    want_pred, want_margin = expected(name, x)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda r: grpc_infer(trees_server, f"{name}_batched", r[None, :]), x))
    assert_same(np.concatenate([g[0] for g in got]), want_pred, f"{name} batched prediction")
    assert_same(np.concatenate([g[1] for g in got]), want_margin, f"{name} batched margin")
    stats = requests.get(f"{trees_server.http}/v2/models/{name}_batched/stats", timeout=5).json()
    s = stats["model_stats"][0]
    assert s["inference_count"] >= len(x)
    assert s["execution_count"] < s["inference_count"], "no two requests shared an execution"


make_trees_name = {"fil_lgb_proba": "lgb_binary", "fil_lgb_class": "lgb_binary", "fil_xgb_proba": "xgb_multiclass",
                   "fil_xgb_class": "xgb_binary", "fil_lgb_regression": "lgb_regression", "fil_xgb_ubj": "xgb_ubj"}


def test_a_repository_written_for_triton_fil_loads_unchanged(make_server, tmp_path):
    """FIL's config: backend "fil", input__0/output__0, model_type with FIL's default file names, output_class
    and predict_proba; the outputs mean what FIL's do (class index, or one probability per class)."""
    repo = tmp_path / "fil"
    cases = {
        "fil_lgb_proba": ("lightgbm", "model.txt", {"output_class": "true", "predict_proba": "true"}, 2),
        "fil_lgb_class": ("lightgbm", "model.txt", {"output_class": "true", "threshold": "0.3"}, 1),
        "fil_xgb_proba": ("xgboost_json", "xgboost.json", {"output_class": "true", "predict_proba": "true"}, 3),
        "fil_xgb_class": ("xgboost_json", "xgboost.json", {"is_classifier": "true"}, 1),
        "fil_lgb_regression": ("lightgbm", "model.txt", {"output_class": "false"}, 1),
        "fil_xgb_ubj": ("xgboost_ubj", "xgboost.ubj", {"output_class": "true", "predict_proba": "true"}, 3),
    }
    for name, (model_type, file_name, params, width) in cases.items():
        d = repo / name
        (d / "1").mkdir(parents=True)
        source = make_trees_name[name]
        shutil.copy(make_trees.file_of(source), d / "1" / file_name)
        x, _ = make_trees.MODELS[source][1]()
        entries = [("model_type", model_type), *params.items()]
        (d / "config.pbtxt").write_text(
            'backend: "fil"\nmax_batch_size: 8192\n'
            f'input [ {{ name: "input__0" data_type: TYPE_FP32 dims: [ {x.shape[1]} ] }} ]\n'
            f'output [ {{ name: "output__0" data_type: TYPE_FP32 dims: [ {width} ] }} ]\n'
            'instance_group [ { kind: KIND_CPU } ]\n'
            "parameters [ " + ", ".join(f'{{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in entries)
            + " ]\n")
    server = make_server(repo)
    for name, (_, _, params, width) in cases.items():
        source = make_trees_name[name]
        x = rows_of(source)
        pred, _ = expected(source, x)
        (got,) = grpc_infer(server, name, x, outputs=("output__0",))
        assert got.shape == (len(x), width), name
        pred = column(pred)
        if params.get("predict_proba") == "true":
            want = np.hstack([1 - pred, pred]) if pred.shape[1] == 1 else pred
        elif params.get("output_class") == "true" or params.get("is_classifier") == "true":
            threshold = float(params.get("threshold", 0.5))
            want = (pred > threshold).astype(float) if pred.shape[1] == 1 else pred.argmax(axis=1)[:, None]
        else:
            want = pred
        if params.get("predict_proba") == "true" and pred.shape[1] == 1:
            np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=RTOL, err_msg=name)
            np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=1e-5, atol=1e-7, err_msg=name)  # 1 - p in float
        else:
            np.testing.assert_allclose(got, want, rtol=RTOL, err_msg=name)


def set_value(key, index, value):
    """Sets value `index` of the first tree's `key=` list."""
    def change(text):
        head, line, rest = text.partition(f"\n{key}=")
        first, newline, tail = rest.partition("\n")
        values = first.split(" ")
        values[index] = value
        return head + line + " ".join(values) + newline + tail
    return change


# name -> (how the LightGBM file is broken, words the load error must hold)
BROKEN = {
    "truncated": (lambda text: text[: len(text) // 2], "end of trees"),
    "not_a_model": (lambda text: "hello\n", "not a LightGBM"),
    "bad_child": (set_value("left_child", 0, "77"), "outside the tree"),
    "cycle": (set_value("right_child", 1, "1"), "reached twice"),
    "feature_out_of_range": (set_value("split_feature", 0, "4000"), "splits on feature 4000"),
    "counts_disagree": (lambda text: text.replace("num_leaves=15", "num_leaves=16", 1), "values, not"),
    "not_a_number": (set_value("threshold", 0, "0x1p3"), "not a number"),
    "linear_tree": (lambda text: text.replace("is_linear=0", "is_linear=1", 1), "linear trees are not supported"),
    "unknown_objective": (lambda text: text.replace("objective=binary", "objective=mystery", 1),
                          "objective 'mystery'"),
}


def test_broken_model_files_fail_to_load_with_a_reason_and_the_rest_serves(make_server, tmp_path):
    repo = tmp_path / "broken"
    text = make_trees.file_of("lgb_binary").read_text()
    for name, (breaks, _) in BROKEN.items():
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "1" / "model.txt").write_text(breaks(text))
        (repo / name / "config.pbtxt").write_text('backend: "trees"\nmax_batch_size: 8\n')
    (repo / "good" / "1").mkdir(parents=True)
    shutil.copy(make_trees.file_of("xgb_binary"), repo / "good" / "1" / "model.json")
    (repo / "good" / "config.pbtxt").write_text('backend: "trees"\nmax_batch_size: 8\n')
    server = make_server(repo, ready=False)  # not ready: some of its models failed
    def good_ready():
        try:
            return requests.get(f"{server.http}/v2/models/good/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(good_ready, what="the good model ready")
    index = {m["name"]: m for m in requests.post(f"{server.http}/v2/repository/index", timeout=5).json()}
    assert index["good"]["state"] == "READY"
    for name, (_, words) in BROKEN.items():
        assert index[name]["state"] != "READY", name
        assert words in index[name].get("reason", ""), (name, index[name])
    x = rows_of("xgb_binary")[:8]
    (pred,) = grpc_infer(server, "good", x, outputs=("output__0",))
    assert_same(pred, expected("xgb_binary", x)[0], "the good model beside the broken ones")
