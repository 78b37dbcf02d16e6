"""The compiled HistGradientBoosting scorer gives sklearn's own probabilities, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier

from model_service.fasttrees import compile_hgb


def _fit(classes: int, seed: int, missing: float) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(800, 6))
    x[rng.random(x.shape) < missing] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(scale=0.3, size=800) > 0).astype(int)
    if classes == 3:
        y = np.where(np.nan_to_num(x[:, 1]) > 0.8, -1, y)
    est = HistGradientBoostingClassifier(max_iter=25, random_state=0, early_stopping=False).fit(x, y)
    return est, x


@pytest.mark.parametrize("classes", [2, 3])
@given(seed=st.integers(0, 2**16), missing=st.sampled_from([0.0, 0.05, 0.5]))
@settings(max_examples=15, deadline=None)
def test_probabilities_equal_sklearns_exactly(classes: int, seed: int, missing: float) -> None:
    est, x = _fit(classes, seed, missing)
    fast = compile_hgb(est)
    rng = np.random.default_rng(seed + 1)
    rows = rng.normal(scale=2.0, size=(300, 6))
    rows[rng.random(rows.shape) < 0.2] = np.nan  # missing where training had none, too
    rows[:5] = x[:5]
    want = est.predict_proba(rows)
    assert np.array_equal(fast.predict_proba(rows), want)
    for i in range(10):  # one row at a time, as the service scores a lone vector
        assert np.array_equal(fast.predict_proba(rows[i:i + 1]), want[i:i + 1])


def test_a_model_with_categorical_splits_is_left_to_sklearn() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 4, 500).astype(float), rng.normal(size=500)])
    y = (x[:, 0] == 2).astype(int)
    est = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0], early_stopping=False).fit(x, y)
    assert compile_hgb(est) is None
