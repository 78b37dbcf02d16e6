"""HistGradientBoosting scoring in one compiled pass: the same probabilities as sklearn, bit for bit.

sklearn predicts one row by calling each tree's predictor from Python (300 calls for 100 iterations
of 3 classes, ~6 µs each: ~2 ms a vector). Here every tree's nodes are flattened into numpy arrays
once, when a model is activated, and one numba kernel walks them: the raw score of each class is
the baseline plus the trees' leaf values added in sklearn's order (iteration by iteration), so
the float64 sums are identical, and sklearn's own loss turns them into probabilities. A model with
categorical splits is not compiled (`compile_hgb` returns None) and sklearn scores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit


@dataclass(frozen=True)
class CompiledTrees:
    """Every tree of a fitted HistGradientBoostingClassifier as flat arrays (node ids are global)."""

    baseline: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    tree_class: np.ndarray
    loss: Any

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of the rows of `x` (float64, NaN = missing), in the estimator's class order."""
        raw = np.zeros((x.shape[0], self.baseline.shape[0]), dtype=np.float64, order="F")
        _raw_predict(np.ascontiguousarray(x, dtype=np.float64), self.baseline, self.feature, self.threshold,
                     self.missing_left, self.left, self.right, self.is_leaf, self.value, self.roots,
                     self.tree_class, raw)
        return self.loss.predict_proba(raw)


def compile_hgb(est: Any) -> CompiledTrees | None:
    """Flatten a fitted HistGradientBoostingClassifier; None when it cannot be (categorical splits)."""
    parts, roots, classes, offset = [], [], [], 0
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                return None
            parts.append(nodes)
            roots.append(offset)
            classes.append(k)
            offset += len(nodes)
    nodes = np.concatenate(parts)
    shift = np.repeat(np.array(roots, dtype=np.int64), [len(p) for p in parts])
    c = CompiledTrees(np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1).copy(),
                      nodes["feature_idx"].astype(np.int64), nodes["num_threshold"].astype(np.float64),
                      nodes["missing_go_to_left"].astype(np.bool_), nodes["left"].astype(np.int64) + shift,
                      nodes["right"].astype(np.int64) + shift, nodes["is_leaf"].astype(np.bool_),
                      nodes["value"].astype(np.float64), np.array(roots, dtype=np.int64),
                      np.array(classes, dtype=np.int64), est._loss)
    c.predict_proba(np.zeros((1, est.n_features_in_)))  # compile (or load the cache) now, not on a live vector
    return c


@njit(cache=True)
def _raw_predict(x, baseline, feature, threshold, missing_left, left, right, is_leaf, value, roots,  # noqa: ANN001, PLR0913
                 tree_class, out) -> None:  # noqa: ANN001
    """out[i, k] = baseline[k] + the leaf values of class k's trees for row i, in tree order."""
    for i in range(x.shape[0]):
        for k in range(baseline.shape[0]):
            out[i, k] = baseline[k]
        for t in range(roots.shape[0]):
            node = roots[t]
            while not is_leaf[node]:
                v = x[i, feature[node]]
                if np.isnan(v):
                    node = left[node] if missing_left[node] else right[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            out[i, tree_class[t]] += value[node]
