"""The tree models the `trees` backend is tested against, trained with LightGBM and XGBoost (PyPI) on datasets
scikit-learn ships (and synthetic data from a fixed seed), saved as the libraries save them:
models/trees/<name>/model.txt (LightGBM text), model.json (XGBoost JSON) or model.ubj (XGBoost UBJSON). The files are committed; the tests
compare the server's predictions with the library's predict() on these files (tests/e2e/test_trees.py).

Usage: .venv/bin/python models/trees/make_trees.py [NAME...]   (default: every model; needs lightgbm, xgboost)"""
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def with_nans(x, fraction=0.15, seed=1):
    x = np.array(x, dtype=np.float32)
    x[np.random.default_rng(seed).random(x.shape) < fraction] = np.nan
    return x


def breast_cancer():
    from sklearn.datasets import load_breast_cancer
    d = load_breast_cancer()
    return d.data.astype(np.float32), d.target


def breast_cancer_nan():
    x, y = breast_cancer()
    return with_nans(x), y


def wine():
    from sklearn.datasets import load_wine
    d = load_wine()
    return d.data.astype(np.float32), d.target


def iris():
    from sklearn.datasets import load_iris
    d = load_iris()
    return d.data.astype(np.float32), d.target


def diabetes():
    from sklearn.datasets import load_diabetes
    d = load_diabetes()
    return d.data.astype(np.float32), d.target


def diabetes_zeros():
    """diabetes with a quarter of its values set to 0: for LightGBM's zero_as_missing."""
    x, y = diabetes()
    x = x.copy()
    x[np.random.default_rng(2).random(x.shape) < 0.25] = 0
    return x, y


def counts():
    """Poisson counts from three features (fixed seed)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 3)).astype(np.float32)
    y = rng.poisson(np.exp(0.5 * x[:, 0] - 0.3 * x[:, 1] + 0.2))
    return x, y


def categories():
    """Two categorical columns (40 and 5 categories, as floats) and two numeric ones (fixed seed)."""
    rng = np.random.default_rng(4)
    n = 3000
    a = rng.integers(0, 40, n)
    b = rng.integers(0, 5, n)
    u, v = rng.normal(size=n), rng.normal(size=n)
    logit = np.where(np.isin(a, [1, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]), 1.5, -1.0) + 0.8 * (b == 2) + u
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    return np.column_stack([a, b, u, v]).astype(np.float32), y


def relevance():
    """Ranking: 60 queries of 20 documents, relevance 0-3 from five features (fixed seed)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1200, 5)).astype(np.float32)
    score = x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=len(x))
    y = np.digitize(score, [-0.5, 0.5, 1.5])
    return x, y


def positive_targets():
    """diabetes' target is positive throughout: for gamma."""
    return diabetes()


def probabilities():
    """Labels in [0, 1] (not only 0 and 1) for LightGBM's cross-entropy objectives (fixed seed)."""
    x, y = breast_cancer()
    rng = np.random.default_rng(6)
    return x, np.clip(y * 0.8 + rng.random(len(y)) * 0.2, 0, 1)


# Ranking models are trained on groups of this many rows (queries).
QUERY = 20

# name -> (library, data, training parameters, rounds, early stopping)
MODELS = {
    "lgb_binary": ("lightgbm", breast_cancer, {"objective": "binary", "num_leaves": 15}, 40, False),
    "lgb_multiclass": ("lightgbm", wine, {"objective": "multiclass", "num_class": 3, "num_leaves": 7}, 30, False),
    "lgb_multiclassova": ("lightgbm", iris, {"objective": "multiclassova", "num_class": 3, "num_leaves": 5}, 20, False),
    "lgb_regression": ("lightgbm", diabetes, {"objective": "regression", "num_leaves": 15}, 40, False),
    "lgb_poisson": ("lightgbm", counts, {"objective": "poisson", "num_leaves": 7}, 30, False),
    "lgb_categorical": ("lightgbm", categories, {"objective": "binary", "num_leaves": 15,
                                                 "categorical_feature": [0, 1], "min_data_per_group": 5,
                                                 "cat_smooth": 1}, 30, False),
    "lgb_nan": ("lightgbm", breast_cancer_nan, {"objective": "binary", "num_leaves": 15}, 40, False),
    "lgb_zero_as_missing": ("lightgbm", diabetes_zeros, {"objective": "regression", "num_leaves": 7,
                                                         "zero_as_missing": True}, 30, False),
    "lgb_early_stopping": ("lightgbm", breast_cancer, {"objective": "binary", "num_leaves": 31,
                                                       "learning_rate": 0.3}, 200, True),
    "lgb_rf": ("lightgbm", diabetes, {"objective": "regression", "boosting": "rf", "num_leaves": 15,
                                      "bagging_freq": 1, "bagging_fraction": 0.7, "feature_fraction": 0.8}, 20, False),
    "lgb_lambdarank": ("lightgbm", relevance, {"objective": "lambdarank", "num_leaves": 7}, 20, False),
    "lgb_rank_xendcg": ("lightgbm", relevance, {"objective": "rank_xendcg", "num_leaves": 7}, 20, False),
    "lgb_gamma": ("lightgbm", positive_targets, {"objective": "gamma", "num_leaves": 7}, 20, False),
    "lgb_tweedie": ("lightgbm", counts, {"objective": "tweedie", "num_leaves": 7}, 20, False),
    "lgb_cross_entropy": ("lightgbm", probabilities, {"objective": "cross_entropy", "num_leaves": 7}, 20, False),
    "lgb_cross_entropy_lambda": ("lightgbm", probabilities, {"objective": "cross_entropy_lambda", "num_leaves": 7},
                                 20, False),
    "lgb_sqrt": ("lightgbm", diabetes, {"objective": "regression", "reg_sqrt": True, "num_leaves": 7}, 20, False),
    "xgb_binary": ("xgboost", breast_cancer, {"objective": "binary:logistic", "max_depth": 4}, 40, False),
    "xgb_multiclass": ("xgboost", wine, {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}, 30, False),
    "xgb_softmax": ("xgboost", iris, {"objective": "multi:softmax", "num_class": 3, "max_depth": 3}, 20, False),
    "xgb_regression": ("xgboost", diabetes, {"objective": "reg:squarederror", "max_depth": 4}, 40, False),
    "xgb_poisson": ("xgboost", counts, {"objective": "count:poisson", "max_depth": 3}, 30, False),
    "xgb_nan": ("xgboost", breast_cancer_nan, {"objective": "binary:logistic", "max_depth": 4}, 40, False),
    "xgb_ubj": ("xgboost", wine, {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}, 20, False),
    "xgb_hinge": ("xgboost", breast_cancer, {"objective": "binary:hinge", "max_depth": 3}, 20, False),
    "xgb_logitraw": ("xgboost", breast_cancer, {"objective": "binary:logitraw", "max_depth": 3}, 20, False),
    "xgb_gamma": ("xgboost", positive_targets, {"objective": "reg:gamma", "max_depth": 3}, 20, False),
    "xgb_tweedie": ("xgboost", counts, {"objective": "reg:tweedie", "max_depth": 3}, 20, False),
    "xgb_rank": ("xgboost", relevance, {"objective": "rank:ndcg", "max_depth": 3}, 20, False),
    # Partition splits on the 40-category column, one-hot splits on the 5-category one (max_cat_to_onehot).
    "xgb_categorical": ("xgboost", categories, {"objective": "binary:logistic", "max_depth": 4, "tree_method": "hist",
                                                "max_cat_to_onehot": 8, "feature_types": ["c", "c", "q", "q"]},
                        30, False),
    "xgb_early_stopping": ("xgboost", breast_cancer, {"objective": "binary:logistic", "max_depth": 6, "eta": 0.5},
                           200, True),
}


def file_of(name):
    if MODELS[name][0] == "lightgbm":
        return HERE / name / "model.txt"
    return HERE / name / ("model.ubj" if name.endswith("_ubj") else "model.json")


def train(name):
    library, data, params, rounds, early = MODELS[name]
    x, y = data()
    split = len(x) * 3 // 4
    out = file_of(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    if library == "lightgbm":
        import lightgbm as lgb
        params = dict(params, seed=0, num_threads=1, deterministic=True, verbose=-1)
        categorical = params.pop("categorical_feature", "auto")
        train_set = lgb.Dataset(x[:split] if early else x, y[:split] if early else y, categorical_feature=categorical,
                                group=[QUERY] * (len(x) // QUERY) if data is relevance else None)
        kwargs = {}
        if early:
            kwargs = {"valid_sets": [lgb.Dataset(x[split:], y[split:], reference=train_set)],
                      "callbacks": [lgb.early_stopping(5, verbose=False)]}
        booster = lgb.train(params, train_set, num_boost_round=rounds, **kwargs)
        booster.save_model(str(out))  # with early stopping: the trees up to the best iteration
    else:
        import xgboost as xgb
        params = dict(params, seed=0, nthread=1)
        types = params.pop("feature_types", None)
        dtrain = xgb.DMatrix(x[:split] if early else x, label=y[:split] if early else y, feature_types=types,
                             enable_categorical=types is not None)
        if data is relevance:
            dtrain.set_group([QUERY] * (len(x) // QUERY))
        kwargs = {}
        if early:
            kwargs = {"evals": [(xgb.DMatrix(x[split:], label=y[split:]), "valid")], "early_stopping_rounds": 5,
                      "verbose_eval": False}
        booster = xgb.train(params, dtrain, num_boost_round=rounds, **kwargs)
        booster.save_model(str(out))  # every tree, and best_iteration when early stopping ran
    print(f"{name}: {out.relative_to(HERE.parent.parent)} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    import sys
    for model in sys.argv[1:] or MODELS:
        train(model)
