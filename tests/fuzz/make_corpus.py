"""The fuzzers' seed corpus (tests/fuzz/corpus): tiny LightGBM and XGBoost models of every shape the parsers
read (binary, multiclass, categorical, missing values, regression), small so that the fuzzer's mutations reach
every field. Usage: .venv/bin/python tests/fuzz/make_corpus.py"""
import pathlib
import sys

import lightgbm as lgb
import numpy as np
import xgboost as xgb

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "models" / "trees"))
import make_trees  # noqa: E402


def main():
    out_l, out_x, out_u = HERE / "corpus" / "lightgbm", HERE / "corpus" / "xgboost", HERE / "corpus" / "xgboost_ubj"
    for d in (out_l, out_x, out_u):
        d.mkdir(parents=True, exist_ok=True)
    cases = {"binary": (make_trees.breast_cancer_nan, "binary", "binary:logistic", 0),
             "multiclass": (make_trees.iris, "multiclass", "multi:softprob", 3),
             "regression": (make_trees.diabetes_zeros, "regression", "reg:squarederror", 0)}
    for name, (data, lgb_objective, xgb_objective, classes) in cases.items():
        x, y = data()
        x = x[:, :3]
        params = {"objective": lgb_objective, "num_leaves": 4, "verbose": -1, "seed": 0, "num_threads": 1,
                  "min_data_in_leaf": 5}
        if classes:
            params["num_class"] = classes
        lgb.train(params, lgb.Dataset(x, y), num_boost_round=2).save_model(str(out_l / f"{name}.txt"))
        xparams = {"objective": xgb_objective, "max_depth": 2, "seed": 0, "nthread": 1}
        if classes:
            xparams["num_class"] = classes
        booster = xgb.train(xparams, xgb.DMatrix(x, label=y), num_boost_round=2)
        booster.save_model(str(out_x / f"{name}.json"))
        booster.save_model(str(out_u / f"{name}.ubj"))
    x, y = make_trees.categories()
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": 0, "num_threads": 1,
              "min_data_per_group": 5, "cat_smooth": 1}
    lgb.train(params, lgb.Dataset(x, y, categorical_feature=[0, 1]), num_boost_round=2).save_model(
        str(out_l / "categorical.txt"))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "seed": 0, "nthread": 1, "tree_method": "hist",
                         "max_cat_to_onehot": 8},
                        xgb.DMatrix(x, label=y, feature_types=["c", "c", "q", "q"], enable_categorical=True),
                        num_boost_round=2)
    booster.save_model(str(out_x / "categorical.json"))
    booster.save_model(str(out_u / "categorical.ubj"))
    for p in sorted(out_l.iterdir()) + sorted(out_x.iterdir()) + sorted(out_u.iterdir()):
        print(p.relative_to(HERE), p.stat().st_size)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
