"""Trains the tree benchmark's models (not committed: `make bench-trees` makes them in its output folder).

Synthetic data from a fixed seed (scikit-learn's make_classification), 32 features. Sizes from the issue:
small = 100 iterations x 31 leaves, large = 1000 iterations x 255 leaves; binary and 10-class (a 10-class
model has one tree per class and iteration). LightGBM saves text, XGBoost JSON (lossguide, same leaf cap).
"""
import argparse
import json
import pathlib
import time

import lightgbm
import numpy as np
import xgboost
from sklearn.datasets import make_classification

SIZES = {"small": (100, 31), "large": (1000, 255)}
FEATURES = 32


def data(classes, rows=20000):
    x, y = make_classification(n_samples=rows, n_features=FEATURES, n_informative=24, n_redundant=4,
                               n_classes=classes, n_clusters_per_class=2, random_state=42)
    return x.astype(np.float32), y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", default="", help="comma-separated model names")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = {}
    for size, (iterations, leaves) in SIZES.items():
        for classes in (2, 10):
            x, y = data(classes)
            kind = "binary" if classes == 2 else "10class"
            name = f"lgb_{size}_{kind}"
            if not args.only or name in args.only.split(","):
                start = time.time()
                params = {"objective": "binary" if classes == 2 else "multiclass", "num_leaves": leaves,
                          "learning_rate": 0.05, "min_data_in_leaf": 5, "num_threads": 2, "verbose": -1,
                          "seed": 1}
                if classes > 2:
                    params["num_class"] = classes
                booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=iterations)
                (out / name).mkdir(exist_ok=True)
                booster.save_model(str(out / name / "model.txt"))
                made[name] = {"library": "lightgbm", "trees": booster.num_trees(), "leaves": leaves,
                              "classes": classes, "train_s": round(time.time() - start, 1)}
                print(name, made[name], flush=True)
            name = f"xgb_{size}_{kind}"
            if not args.only or name in args.only.split(","):
                start = time.time()
                params = {"objective": "binary:logistic" if classes == 2 else "multi:softprob",
                          "tree_method": "hist", "grow_policy": "lossguide", "max_leaves": leaves,
                          "max_depth": 0, "eta": 0.05, "nthread": 2, "seed": 1}
                if classes > 2:
                    params["num_class"] = classes
                booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=iterations)
                (out / name).mkdir(exist_ok=True)
                booster.save_model(str(out / name / "model.json"))
                made[name] = {"library": "xgboost", "trees": iterations * (classes if classes > 2 else 1),
                              "leaves": leaves, "classes": classes, "train_s": round(time.time() - start, 1)}
                print(name, made[name], flush=True)
    np.save(out / "rows.npy", data(2, rows=4096)[0])
    (out / "models.json").write_text(json.dumps(made, indent=1))


if __name__ == "__main__":
    main()
