"""Classification metrics of a model on one part of the split, beside the majority-class baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

#: The label classes, in the column order of every probability matrix here.
CLASSES = (-1, 0, 1)
#: Probabilities are clipped to [EPS, 1 - EPS] for the log loss (a confident miss is finite).
EPS = 1e-15


def align(classes: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """`proba` with columns for `classes` rearranged to `CLASSES` order; a class the model never saw gets 0."""
    out = np.zeros((proba.shape[0], len(CLASSES)), dtype=np.float64)
    for j, c in enumerate(classes):
        out[:, CLASSES.index(int(c))] = proba[:, j]
    return out


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the true class (rows renormalised after clipping, as sklearn does)."""
    p = np.clip(proba, EPS, 1 - EPS)
    p = p / p.sum(axis=1, keepdims=True)
    cols = np.searchsorted(np.array(CLASSES), y)
    return float(-np.log(p[np.arange(len(y)), cols]).mean())


def evaluate(y: np.ndarray, proba: np.ndarray, prior: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class precision/recall, log loss and confusion matrix of `proba` on `y`; and the
    baseline that always predicts the most frequent training class with the training `prior`."""
    pred = np.array(CLASSES)[np.argmax(proba, axis=1)]
    confusion = [[int(((y == t) & (pred == p)).sum()) for p in CLASSES] for t in CLASSES]
    per_class = {}
    for c in CLASSES:
        tp, predicted, actual = int(((pred == c) & (y == c)).sum()), int((pred == c).sum()), int((y == c).sum())
        per_class[str(c)] = {"precision": tp / predicted if predicted else None,
                             "recall": tp / actual if actual else None, "support": actual}
    majority = CLASSES[int(np.argmax(prior))]
    base = np.tile(prior, (len(y), 1))
    return {"rows": len(y), "accuracy": float((pred == y).mean()), "log_loss": log_loss(y, proba),
            "per_class": per_class, "confusion": {"classes": list(CLASSES), "rows_true_cols_predicted": confusion},
            "baseline": {"predict": majority, "accuracy": float((y == majority).mean()), "log_loss": log_loss(y, base)}}


def class_prior(y: np.ndarray) -> np.ndarray:
    """The share of each class of `CLASSES` in `y`."""
    return np.array([(y == c).mean() for c in CLASSES], dtype=np.float64)
