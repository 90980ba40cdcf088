#!/usr/bin/env python3
"""Trains the bundled example models on datasets that scikit-learn ships and exports them to ONNX.

    python models/generate/train.py --out models/repository

Writes, for each model, <out>/<name>/config.pbtxt (Triton's schema), <out>/<name>/labels.txt for the
classifiers and <out>/<name>/1/model.onnx (--config-only: the first two, beside the existing model files):
  breast_cancer  binary classifier (StandardScaler + LogisticRegression), 30 named features,
                 labels malignant/benign
  digits         10-class classifier (StandardScaler + MLP) on 8x8 digit images, 64 pixel features
  diabetes       regressor (GradientBoostingRegressor) on 10 named features

The ONNX files are small and committed, so `make run` needs no Python. Classifiers are exported with
zipmap=False: outputs are `label` (INT64 [N]) and `probabilities` (FP32 [N, classes]).
"""
import argparse
import pathlib

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 7


def config_text(name, onx, labels, feature_names, scores_output, max_batch_size=1024, instances=2):
    """Triton's config.pbtxt schema (docs/model-repository.md): it loads here and in NVIDIA Triton."""
    def dims(value_info):  # without the batch dimension (max_batch_size > 0)
        return ", ".join(str(d.dim_value or -1) for d in value_info.type.tensor_type.shape.dim[1:])

    (inp,) = onx.graph.input
    out = next(o for o in onx.graph.output if o.name == scores_output)
    label_file = ' label_filename: "labels.txt"' if labels else ""
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
        f'input [ {{ name: "{inp.name}" data_type: TYPE_FP32 dims: [ {dims(inp)} ] }} ]',
        f'output [ {{ name: "{out.name}" data_type: TYPE_FP32 dims: [ {dims(out)} ]{label_file} }} ]',
        f"instance_group [ {{ count: {instances} kind: KIND_CPU }} ]",
        "version_policy { latest { num_versions: 1 } }",
        "# Read by this server, ignored by Triton: the /v1 API's named features and scores output.",
        f'parameters {{ key: "feature_names" value: {{ string_value: "{",".join(feature_names)}" }} }}',
        f'parameters {{ key: "scores_output" value: {{ string_value: "{scores_output}" }} }}',
    ]
    return "\n".join(lines) + "\n"


def export(out, name, model, x_sample, labels, feature_names, scores_output, options=None, config_only=False):
    vdir = out / name / "1"
    if config_only:
        onx = onnx.load(str(vdir / "model.onnx"))
    else:
        onx = to_onnx(model, x_sample[:1].astype(np.float32), options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        vdir.mkdir(parents=True, exist_ok=True)
        (vdir / "model.onnx").write_bytes(onx.SerializeToString())
    (out / name / "config.pbtxt").write_text(config_text(name, onx, labels, feature_names, scores_output))
    if labels:
        (out / name / "labels.txt").write_text("".join(f"{label}\n" for label in labels))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="models/repository", type=pathlib.Path)
    parser.add_argument("--config-only", action="store_true",
                        help="rewrite config.pbtxt and labels.txt beside the existing model.onnx files")
    args = parser.parse_args()
    only = {"config_only": args.config_only}

    bc = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(bc.data, bc.target, random_state=SEED, stratify=bc.target)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED)).fit(x_train, y_train)
    print(f"breast_cancer: test accuracy {clf.score(x_test, y_test):.3f}")
    export(args.out, "breast_cancer", clf, x_train, list(bc.target_names), list(bc.feature_names), "probabilities",
           options={id(clf): {"zipmap": False}}, **only)

    dg = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(dg.data, dg.target, random_state=SEED, stratify=dg.target)
    mlp = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=SEED))
    mlp.fit(x_train, y_train)
    print(f"digits: test accuracy {mlp.score(x_test, y_test):.3f}")
    export(args.out, "digits", mlp, x_train, [str(c) for c in dg.target_names], list(dg.feature_names),
           "probabilities", options={id(mlp): {"zipmap": False}}, **only)

    db = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(db.data, db.target, random_state=SEED)
    reg = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=SEED).fit(x_train, y_train)
    print(f"diabetes: test R^2 {reg.score(x_test, y_test):.3f}")
    export(args.out, "diabetes", reg, x_train, [], list(db.feature_names), "variable", **only)


if __name__ == "__main__":
    main()
