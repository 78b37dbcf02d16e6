"""The model kinds a train request may name, built from scikit-learn with checked parameters.

- ``logistic``: median imputation, standardisation, multinomial logistic regression; parameters go to
  the `LogisticRegression` (``C``, ``max_iter``, ``class_weight`` ...).
- ``hist_gradient_boosting``: `HistGradientBoostingClassifier` (missing values handled natively) with
  ``random_state=0`` and ``early_stopping=False`` by default: sklearn's early stopping holds out a
  *random* validation sample, which would mix times, so it is refused.
- ``auto``: both, the lower validation log loss wins; ``params`` may hold one mapping per kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KINDS = ("logistic", "hist_gradient_boosting")
AUTO = "auto"


class ModelSpecError(ValueError):
    """The ``model`` of a train request is not one this service builds; the message says why."""


def normalise(spec: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """``(kind, {kind: params})`` from a request's ``model`` (``{kind, params}``), every parameter checked."""
    if spec is None:
        spec = {"kind": AUTO}
    if not isinstance(spec, dict) or set(spec) - {"kind", "params"}:
        raise ModelSpecError("model must be an object {kind, params}")
    kind, params = spec.get("kind", AUTO), spec.get("params") or {}
    if kind not in (*KINDS, AUTO):
        raise ModelSpecError(f"model.kind {kind!r} is not one of {', '.join((*KINDS, AUTO))}")
    if not isinstance(params, dict):
        raise ModelSpecError("model.params must be an object")
    if kind != AUTO:
        per_kind = {kind: params}
    else:
        unknown = set(params) - set(KINDS)
        if unknown:
            raise ModelSpecError(f"model.params of kind auto holds one object per kind ({', '.join(KINDS)}), "
                                 f"not {sorted(unknown)[0]!r}")
        per_kind = {k: params.get(k) or {} for k in KINDS}
    for k, p in per_kind.items():
        make(k, p)
    return kind, per_kind


def make(kind: str, params: dict[str, Any]) -> Any:
    """An unfitted estimator of `kind` with `params`; ModelSpecError naming a bad parameter."""
    from sklearn.utils._param_validation import InvalidParameterError

    if not isinstance(params, dict):
        raise ModelSpecError(f"model.params of {kind} must be an object")
    est, inner = _estimator(kind)
    if kind == "hist_gradient_boosting" and params.get("early_stopping", False) is not False:
        raise ModelSpecError("model.params.early_stopping: sklearn's early stopping holds out a random, not "
                             "time-ordered, sample; the service validates on the time-ordered split instead")
    known = inner.get_params(deep=False)
    for name in params:
        if name not in known:
            raise ModelSpecError(f"model.params: {name!r} is not a parameter of {type(inner).__name__} "
                                 f"(known: {', '.join(sorted(known))})")
    inner.set_params(**params)
    try:
        inner._validate_params()  # sklearn's own checks, before any data is read
    except (InvalidParameterError, ValueError, TypeError) as e:
        raise ModelSpecError(f"model.params: {e}") from None
    return est


def _estimator(kind: str) -> tuple[Any, Any]:
    """(the estimator, the part of it that takes the request's parameters)."""
    if kind == "logistic":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        lr = LogisticRegression(max_iter=1000)
        return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("scale", StandardScaler()), ("model", lr)]), lr
    if kind == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        hgb = HistGradientBoostingClassifier(random_state=0, early_stopping=False)
        return hgb, hgb
    raise ModelSpecError(f"model.kind {kind!r} is not one of {', '.join(KINDS)}")


def fit(kind: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[Any, list[int]]:
    """The fitted estimator and the columns that were missing in every training row.

    Such a column (a feature whose window never filled in the training period) carries nothing to
    learn; it is fitted as a constant 0, so neither kind ever uses it (no split, a zero weight), and
    scoring passes live values through untouched. (sklearn's binning fails on an all-missing column.)
    """
    empty = np.flatnonzero(np.isnan(x).all(axis=0)).tolist()
    if empty:
        x = x.copy()
        x[:, empty] = 0.0
    return make(kind, params).fit(x, y), empty


def as_input(x: np.ndarray) -> np.ndarray:
    """The feature matrix as the models take it, in training and scoring alike: float64, ±inf as NaN (missing)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    inf = np.isinf(x)
    if inf.any():
        x = np.where(inf, np.nan, x)
    return x
