"""Non-neural baselines on the sweep's own 70/15/15 split (seed 0): ridge and tuned GBM."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from trainable.data import (
    BUILTIN_ABALONE,
    FEATURES,
    NUMERIC_FEATURES,
    SEX,
    SEX_CODES,
    Splits,
    load_dataset,
    split_dataset,
)

RIDGE_ALPHAS = np.logspace(-4, 3, 29)
GBM_CANDIDATES = 20


def load_splits(source: str = BUILTIN_ABALONE, seed: int = 0) -> Splits:
    """The split every sweep of the default spec uses: 15 % validation, 15 % test."""
    return split_dataset(load_dataset(source), 0.15, 0.15, seed)


def rmse(predictions: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error."""
    err = np.asarray(predictions, "float64").reshape(-1) - np.asarray(target, "float64")
    return float(math.sqrt(np.mean(err**2)))


def _xy(splits: Splits, part: str) -> tuple[pd.DataFrame, np.ndarray]:
    frame = getattr(splits, part)
    x = frame[list(FEATURES)].copy()
    x[SEX] = pd.Categorical(x[SEX], categories=list(SEX_CODES))
    return x, frame[splits.target].to_numpy("float64")


def ridge(splits: Splits) -> dict[str, Any]:
    """One-hot sex + standardised numerics (fitted on train) + RidgeCV; val and test RMSE."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    started = time.perf_counter()
    features = ColumnTransformer(
        [
            ("sex", OneHotEncoder(handle_unknown="ignore"), [SEX]),
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
        ]
    )
    model = make_pipeline(features, RidgeCV(alphas=RIDGE_ALPHAS))
    model.fit(*_xy(splits, "train"))
    return _scores("ridge", model, splits, started, {"alpha": float(model[-1].alpha_)})


def gbm(splits: Splits, candidates: int = GBM_CANDIDATES, seed: int = 0) -> dict[str, Any]:
    """HistGradientBoosting with a seeded random search scored on the validation split only;
    the chosen settings are refitted on train and scored on test."""
    from scipy.stats import loguniform, randint, uniform
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    x_train, y_train = _xy(splits, "train")
    x_val, y_val = _xy(splits, "val")
    base = HistGradientBoostingRegressor(
        max_iter=300, early_stopping=False, categorical_features="from_dtype", random_state=seed
    )
    search = RandomizedSearchCV(
        base,
        {
            "learning_rate": loguniform(0.01, 0.3),
            "max_leaf_nodes": randint(4, 64),
            "min_samples_leaf": randint(5, 100),
            "l2_regularization": uniform(0.0, 2.0),
        },
        n_iter=candidates,
        scoring="neg_root_mean_squared_error",
        cv=PredefinedSplit(np.r_[np.full(len(y_train), -1), np.zeros(len(y_val))]),
        refit=False,
        random_state=seed,
    )
    # One OpenMP thread: on a busy machine, spinning threads make each fit many times slower.
    with threadpool_limits(1):
        search.fit(pd.concat([x_train, x_val], ignore_index=True), np.r_[y_train, y_val])
        model = base.set_params(**search.best_params_).fit(x_train, y_train)
    params = {k: _plain(v) for k, v in search.best_params_.items()}
    return _scores("gbm", model, splits, started, params)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _scores(
    name: str, model: Any, splits: Splits, started: float, params: dict[str, Any]
) -> dict[str, Any]:
    x_val, y_val = _xy(splits, "val")
    x_test, y_test = _xy(splits, "test")
    return {
        "variant": name,
        "wall_s": time.perf_counter() - started,
        "best_val_rmse": rmse(model.predict(x_val), y_val),
        "test_rmse": rmse(model.predict(x_test), y_test),
        "params": params,
    }
