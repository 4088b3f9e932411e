"""Non-neural baselines on a sweep's own split, for any table (any :class:`Schema`).

Regression: ridge (``ridge``) and a tuned HistGradientBoostingRegressor (``gbm``), scored by
RMSE and MAE. Classification: logistic regression (``logistic``, its ``C`` chosen on the
validation split) and a tuned HistGradientBoostingClassifier (``gbm``), scored by ROC AUC (two
classes: of the second class in ``schema.classes``; more: one-vs-rest, macro-averaged) and
accuracy. Hyperparameters are chosen on the validation split only; the chosen model is fitted
on train and scored on validation and test. Linear models see categorical columns one-hot and
numeric columns standardised (fitted on train); gradient boosting takes categorical columns
natively (pandas categorical dtype).

Each baseline returns ``{"variant", "wall_s", "scores", "params"}``; ``scores`` are named as a
family reports them (``val_rmse``, ``test_rmse``, ``val_auc``, ``test_accuracy``, ...).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from trainable.contract import Schema
from trainable.tables import Splits

RIDGE_ALPHAS = np.logspace(-4, 3, 29)
LOGISTIC_CS = np.logspace(-4, 4, 17)
GBM_CANDIDATES = 20
PARTS = ("val", "test")


# ---------------------------------------------------------------- metrics


def rmse(predictions: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error."""
    err = np.asarray(predictions, "float64").reshape(-1) - np.asarray(target, "float64")
    return float(math.sqrt(np.mean(err**2)))


def mae(predictions: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error."""
    err = np.asarray(predictions, "float64").reshape(-1) - np.asarray(target, "float64")
    return float(np.mean(np.abs(err)))


def roc_auc(codes: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """ROC AUC of class probabilities (rows x ``n_classes``, columns in class-code order):
    of code 1 for two classes, else one-vs-rest macro-averaged. NaN if a class is absent."""
    from sklearn.metrics import roc_auc_score

    codes = np.asarray(codes)
    if len(np.unique(codes)) < n_classes:
        return math.nan
    if n_classes == 2:
        return float(roc_auc_score(codes, proba[:, 1]))
    return float(
        roc_auc_score(
            codes, proba, multi_class="ovr", average="macro", labels=list(range(n_classes))
        )
    )


# ---------------------------------------------------------------- features


def features(frame: pd.DataFrame, schema: Schema, categorical_dtype: bool = False) -> pd.DataFrame:
    """The feature columns; with ``categorical_dtype``, categorical columns as pandas
    categoricals over the schema's values (what HistGradientBoosting takes natively)."""
    x = frame[schema.feature_names].copy()
    for column in schema.categorical:
        values = x[column.name].astype(str)
        x[column.name] = (
            pd.Categorical(values, categories=list(column.values) or None)
            if categorical_dtype
            else values
        )
    return x


def target(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """The target as float (regression) or as class codes, the index in ``schema.classes``."""
    if schema.task == "regression":
        return frame[schema.target].to_numpy("float64")
    index = {str(c): i for i, c in enumerate(schema.classes)}
    return np.array([index[str(v)] for v in frame[schema.target]], dtype="int64")


def linear_features(schema: Schema) -> Any:
    """One-hot categorical columns and standardised numeric columns, fitted on train."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[tuple[str, Any, list[str]]] = []
    if schema.categorical:
        known = all(c.values for c in schema.categorical)  # a loaded table's schema has them
        categories = [list(c.values) for c in schema.categorical] if known else "auto"
        encoder = OneHotEncoder(categories=categories, handle_unknown="ignore")
        parts.append(("categorical", encoder, [c.name for c in schema.categorical]))
    if schema.numeric:
        parts.append(("numeric", StandardScaler(), schema.numeric))
    return ColumnTransformer(parts)


# ---------------------------------------------------------------- baselines


def run_baselines(splits: Splits, seed: int = 0) -> list[dict[str, Any]]:
    """Every baseline for the task of ``splits.schema``, one result each."""
    if splits.schema.task == "regression":
        return [ridge(splits), gbm(splits, seed=seed)]
    return [logistic(splits), gbm(splits, seed=seed)]


def ridge(splits: Splits) -> dict[str, Any]:
    """One-hot categoricals + standardised numerics (fitted on train) + RidgeCV (its alpha by
    efficient leave-one-out on train); val and test RMSE and MAE."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    started = time.perf_counter()
    schema = splits.schema
    model = make_pipeline(linear_features(schema), RidgeCV(alphas=RIDGE_ALPHAS))
    model.fit(features(splits.train, schema), target(splits.train, schema))
    return _result("ridge", model, splits, started, {"alpha": float(model[-1].alpha_)})


def logistic(splits: Splits) -> dict[str, Any]:
    """One-hot categoricals + standardised numerics (fitted on train) + logistic regression, its
    ``C`` the one with the best validation ROC AUC (the smallest on a tie)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    schema = splits.schema
    x_train, y_train = features(splits.train, schema), target(splits.train, schema)
    base = make_pipeline(linear_features(schema), LogisticRegression(max_iter=5000))
    best_auc, best_model, best_c = -math.inf, None, None
    with threadpool_limits(1):
        for c in LOGISTIC_CS:
            model = clone(base).set_params(logisticregression__C=float(c)).fit(x_train, y_train)
            auc = _classification_scores(model, splits, ("val",), False)["val_auc"]
            if best_model is None or auc > best_auc:
                best_auc, best_model, best_c = auc, model, float(c)
    return _result("logistic", best_model, splits, started, {"C": best_c})


def gbm(splits: Splits, candidates: int = GBM_CANDIDATES, seed: int = 0) -> dict[str, Any]:
    """HistGradientBoosting (regressor or classifier, by the task) with a seeded random search
    scored on the validation split only (RMSE, or ROC AUC); the chosen settings are refitted on
    train and scored on validation and test."""
    from scipy.stats import loguniform, randint, uniform
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    schema = splits.schema
    x_train, y_train = features(splits.train, schema, True), target(splits.train, schema)
    x_val, y_val = features(splits.val, schema, True), target(splits.val, schema)
    settings = {"max_iter": 300, "early_stopping": False, "random_state": seed}
    settings["categorical_features"] = "from_dtype"
    if schema.task == "regression":
        base: Any = HistGradientBoostingRegressor(**settings)
        scoring = "neg_root_mean_squared_error"
    else:
        base = HistGradientBoostingClassifier(**settings)
        scoring = "roc_auc" if len(schema.classes) == 2 else "roc_auc_ovr"
    search = RandomizedSearchCV(
        base,
        {
            "learning_rate": loguniform(0.01, 0.3),
            "max_leaf_nodes": randint(4, 64),
            "min_samples_leaf": randint(5, 100),
            "l2_regularization": uniform(0.0, 2.0),
        },
        n_iter=candidates,
        scoring=scoring,
        cv=PredefinedSplit(np.r_[np.full(len(y_train), -1), np.zeros(len(y_val))]),
        refit=False,
        random_state=seed,
    )
    # One OpenMP thread: on a busy machine, spinning threads make each fit many times slower.
    with threadpool_limits(1):
        search.fit(pd.concat([x_train, x_val], ignore_index=True), np.r_[y_train, y_val])
        model = base.set_params(**search.best_params_).fit(x_train, y_train)
    params = {k: _plain(v) for k, v in search.best_params_.items()}
    return _result("gbm", model, splits, started, params, native_categories=True)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _result(
    name: str,
    model: Any,
    splits: Splits,
    started: float,
    params: dict[str, Any],
    native_categories: bool = False,
) -> dict[str, Any]:
    score = _regression_scores if splits.schema.task == "regression" else _classification_scores
    return {
        "variant": name,
        "wall_s": time.perf_counter() - started,
        "scores": score(model, splits, PARTS, native_categories),
        "params": params,
    }


def _regression_scores(
    model: Any, splits: Splits, parts: tuple[str, ...], native_categories: bool
) -> dict[str, float]:
    scores = {}
    for part in parts:
        frame = getattr(splits, part)
        predictions = model.predict(features(frame, splits.schema, native_categories))
        truth = target(frame, splits.schema)
        scores[f"{part}_rmse"] = rmse(predictions, truth)
        scores[f"{part}_mae"] = mae(predictions, truth)
    return scores


def _classification_scores(
    model: Any, splits: Splits, parts: tuple[str, ...], native_categories: bool
) -> dict[str, float]:
    schema = splits.schema
    n_classes = len(schema.classes)
    scores = {}
    for part in parts:
        frame = getattr(splits, part)
        x, codes = features(frame, schema, native_categories), target(frame, schema)
        # Columns in class-code order (a class absent from train gets probability 0).
        proba = np.zeros((len(codes), n_classes))
        proba[:, list(model.classes_)] = model.predict_proba(x)
        scores[f"{part}_auc"] = roc_auc(codes, proba, n_classes)
        scores[f"{part}_accuracy"] = float(np.mean(model.predict(x) == codes))
    return scores
