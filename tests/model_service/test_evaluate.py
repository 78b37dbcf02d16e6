"""`model_service.evaluate`: column alignment, log loss against sklearn and by hand, the metrics and the
majority-class baseline on a hand example, and the class prior."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score
from sklearn.metrics import log_loss as sk_log_loss

from model_service.evaluate import CLASSES, align, class_prior, evaluate, log_loss


def test_classes_order() -> None:
    assert CLASSES == (-1, 0, 1)


def test_align_reorders_columns_to_class_order() -> None:
    proba = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
    # model columns are classes 1, -1, 0
    out = align(np.array([1, -1, 0]), proba)
    np.testing.assert_array_equal(out, [[0.2, 0.7, 0.1], [0.3, 0.2, 0.5]])
    assert out.dtype == np.float64


def test_align_fills_a_missing_class_with_zeros() -> None:
    out = align(np.array([0, 1]), np.array([[0.25, 0.75], [1.0, 0.0]]))
    np.testing.assert_array_equal(out, [[0.0, 0.25, 0.75], [0.0, 1.0, 0.0]])
    out = align(np.array([-1, 1]), np.array([[0.4, 0.6]]))
    np.testing.assert_array_equal(out, [[0.4, 0.0, 0.6]])


def test_align_accepts_integer_classes_of_any_dtype() -> None:
    out = align(np.array([-1, 0, 1], dtype=np.int8), np.array([[0.2, 0.3, 0.5]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.2, 0.3, 0.5]], rtol=1e-7)
    assert out.dtype == np.float64


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), present=st.sampled_from([(-1, 0, 1), (0, 1), (-1,)]))
@settings(max_examples=150, deadline=None)
def test_log_loss_equals_sklearn(seed: int, n: int, present: tuple[int, ...]) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(3, rng.uniform(0.2, 5.0)), size=n)
    y = rng.choice(np.array(present), size=n)
    np.testing.assert_allclose(log_loss(y, p), sk_log_loss(y, p, labels=[-1, 0, 1]), rtol=1e-12)


def test_log_loss_hand_value() -> None:
    y = np.array([-1, 0, 1])
    p = np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    expected = -(math.log(0.5) + math.log(0.6) + math.log(0.8)) / 3  # 0.47570545188...
    assert log_loss(y, p) == pytest.approx(expected, rel=1e-12)
    assert log_loss(y, p) == pytest.approx(0.4757054518800486, rel=1e-12)


def test_log_loss_renormalises_rows() -> None:
    # rows that do not sum to 1 are scaled to 1: 0.2 of 0.5 is 0.4, 0.3 of 0.6 is 0.5
    y = np.array([-1, 1])
    p = np.array([[0.2, 0.2, 0.1], [0.2, 0.1, 0.3]])
    assert log_loss(y, p) == pytest.approx(-(math.log(0.4) + math.log(0.5)) / 2, rel=1e-12)


def test_log_loss_of_a_confident_miss_is_finite() -> None:
    # the true class gets 0: clipped to 1e-15, the row renormalised by 1 + 1e-15
    value = log_loss(np.array([-1]), np.array([[0.0, 1.0, 0.0]]))
    assert math.isfinite(value)
    assert value == pytest.approx(-math.log(1e-15 / (1 + 1e-15)), rel=1e-9)


# Hand example: 7 rows; the model never predicts -1.
_Y = np.array([-1, -1, 0, 0, 0, 1, 1])
_PRED = np.array([0, 1, 0, 0, 1, 1, 0])


def _proba_for(pred: np.ndarray) -> np.ndarray:
    """0.8 on the predicted class, 0.1 on the others."""
    p = np.full((len(pred), 3), 0.1)
    p[np.arange(len(pred)), pred + 1] = 0.8
    return p


def test_evaluate_hand_example() -> None:
    prior = np.array([0.5, 0.3, 0.2])
    m = evaluate(_Y, _proba_for(_PRED), prior)
    assert m["rows"] == 7
    assert m["accuracy"] == pytest.approx(3 / 7)  # rows 2, 3, 5
    assert m["per_class"]["-1"] == {"precision": None, "recall": 0.0, "support": 2}
    assert m["per_class"]["0"]["precision"] == pytest.approx(2 / 4)  # predicted at rows 0, 2, 3, 6
    assert m["per_class"]["0"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["0"]["support"] == 3
    assert m["per_class"]["1"]["precision"] == pytest.approx(1 / 3)  # predicted at rows 1, 4, 5
    assert m["per_class"]["1"]["recall"] == pytest.approx(1 / 2)
    assert m["per_class"]["1"]["support"] == 2
    assert m["confusion"] == {"classes": [-1, 0, 1],
                              "rows_true_cols_predicted": [[0, 1, 1], [0, 2, 1], [0, 1, 1]]}
    # 3 rows give the true class 0.8, 4 rows give it 0.1
    assert m["log_loss"] == pytest.approx(-(3 * math.log(0.8) + 4 * math.log(0.1)) / 7, rel=1e-12)
    # the baseline predicts -1 (the prior's majority) with the prior as probabilities
    assert m["baseline"]["predict"] == -1
    assert m["baseline"]["accuracy"] == pytest.approx(2 / 7)
    expected_base = -(2 * math.log(0.5) + 3 * math.log(0.3) + 2 * math.log(0.2)) / 7
    assert m["baseline"]["log_loss"] == pytest.approx(expected_base, rel=1e-12)


def test_evaluate_baseline_majority_of_the_prior_not_of_y() -> None:
    prior = np.array([0.1, 0.2, 0.7])
    m = evaluate(_Y, _proba_for(_PRED), prior)
    assert m["baseline"]["predict"] == 1
    assert m["baseline"]["accuracy"] == pytest.approx(2 / 7)
    prior = np.array([0.2, 0.6, 0.2])
    m = evaluate(_Y, _proba_for(_PRED), prior)
    assert m["baseline"]["predict"] == 0
    assert m["baseline"]["accuracy"] == pytest.approx(3 / 7)


def test_evaluate_recall_none_for_an_absent_class() -> None:
    y = np.array([0, 0, 1])
    m = evaluate(y, _proba_for(np.array([-1, 0, 1])), np.array([0.2, 0.4, 0.4]))
    assert m["per_class"]["-1"] == {"precision": 0.0, "recall": None, "support": 0}
    assert m["per_class"]["0"] == {"precision": 1.0, "recall": 0.5, "support": 2}


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 150))
@settings(max_examples=60, deadline=None)
def test_evaluate_matches_sklearn_metrics(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), size=n)
    y = rng.choice(np.array(CLASSES), size=n)
    m = evaluate(y, p, class_prior(y))
    pred = np.array(CLASSES)[p.argmax(axis=1)]
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    cm = confusion_matrix(y, pred, labels=list(CLASSES))
    assert m["confusion"]["rows_true_cols_predicted"] == cm.tolist()
    prec = precision_score(y, pred, labels=list(CLASSES), average=None, zero_division=np.nan)
    rec = recall_score(y, pred, labels=list(CLASSES), average=None, zero_division=np.nan)
    for j, c in enumerate(CLASSES):
        got = m["per_class"][str(c)]
        assert got["support"] == int((y == c).sum())
        for key, ref in (("precision", prec[j]), ("recall", rec[j])):
            if np.isnan(ref):
                assert got[key] is None
            else:
                assert got[key] == pytest.approx(ref)
    np.testing.assert_allclose(m["log_loss"], sk_log_loss(y, p, labels=[-1, 0, 1]), rtol=1e-12)


def test_class_prior() -> None:
    np.testing.assert_allclose(class_prior(np.array([-1, 0, 0, 1, 1, 1])), [1 / 6, 2 / 6, 3 / 6])
    np.testing.assert_array_equal(class_prior(np.array([0, 1, 1, 0])), [0.0, 0.5, 0.5])
    assert class_prior(np.array([1])).dtype == np.float64


@given(st.lists(st.sampled_from(CLASSES), min_size=1, max_size=100))
@settings(max_examples=100, deadline=None)
def test_class_prior_counts(labels: list[int]) -> None:
    prior = class_prior(np.array(labels))
    expected = [labels.count(c) / len(labels) for c in CLASSES]
    np.testing.assert_allclose(prior, expected, rtol=1e-12)
    assert prior.sum() == pytest.approx(1.0)
