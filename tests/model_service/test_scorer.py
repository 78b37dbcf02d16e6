"""`Scorer`: which vectors are admitted (no model, registry skew, width, invalid book, symbols) and counted,
and that scoring gives the estimator's own probabilities in class order -1, 0, 1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from api.wire import WireVector
from model_service.artifacts import LoadedModel
from model_service.scorer import REASONS, Scorer

HASH = "ab" * 8
OTHER = "cd" * 8
NAMES = ("f_a", "f_b", "f_c", "f_d")


@pytest.fixture(scope="module")
def est() -> HistGradientBoostingClassifier:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, len(NAMES)))
    y = np.where(x[:, 0] > 0.5, 1, np.where(x[:, 0] < -0.5, -1, 0))
    return HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)


@pytest.fixture()
def model(est: HistGradientBoostingClassifier) -> LoadedModel:
    return LoadedModel(model_id="0123456789abcdef", registry_hash=HASH, feature_names=NAMES, estimator=est,
                       metadata={})


def vec(symbol: str = "BTCUSDT", book_valid: int = 1, width: int = len(NAMES), registry_hash: str = HASH,
        seed: int = 0) -> WireVector:
    values = np.random.default_rng(seed).normal(size=width).astype(np.float64)
    return WireVector(1_800_000_000_000_000_000 + seed, symbol, book_valid, values, registry_hash)


def test_reasons() -> None:
    assert set(REASONS) == {"no_model", "registry_mismatch", "width_mismatch", "invalid_book", "symbol_not_scored"}


def test_no_model() -> None:
    s = Scorer()
    v = s.admit(vec(), None)
    assert v.reason == "no_model"
    assert not v.new_skew
    assert s.refused["no_model"] == 1
    assert s.last_hash == HASH


def test_admitted(model: LoadedModel) -> None:
    s = Scorer()
    v = s.admit(vec(), model)
    assert v.reason is None
    assert not v.new_skew
    assert sum(s.refused.values()) == 0


def test_registry_mismatch_counted_per_hash(model: LoadedModel) -> None:
    s = Scorer()
    third = "ef" * 8
    verdicts = [s.admit(vec(registry_hash=h), model) for h in (OTHER, OTHER, third, OTHER, third)]
    assert [v.reason for v in verdicts] == ["registry_mismatch"] * 5
    assert [v.new_skew for v in verdicts] == [True, False, True, False, False]
    assert s.skew == {OTHER: 3, third: 2}
    assert s.refused["registry_mismatch"] == 5
    assert s.last_skewed is True
    assert s.last_hash == third
    assert s.admit(vec(), model).reason is None
    assert s.last_skewed is False
    assert s.last_hash == HASH
    # a hash seen before is not new again after admitted vectors in between
    again = s.admit(vec(registry_hash=OTHER), model)
    assert again.reason == "registry_mismatch" and not again.new_skew
    assert s.last_skewed is True
    assert s.skew[OTHER] == 4


def test_activate_clears_last_skewed(model: LoadedModel) -> None:
    s = Scorer()
    s.admit(vec(registry_hash=OTHER), model)
    assert s.last_skewed
    s.activate(model)
    assert s.model is model
    assert not s.last_skewed


@pytest.mark.parametrize("width", [0, 3, 5])
def test_width_mismatch(model: LoadedModel, width: int) -> None:
    s = Scorer()
    assert s.admit(vec(width=width), model).reason == "width_mismatch"
    assert s.refused == {"width_mismatch": 1}


def test_registry_is_checked_before_width(model: LoadedModel) -> None:
    s = Scorer()
    assert s.admit(vec(width=2, registry_hash=OTHER), model).reason == "registry_mismatch"


def test_invalid_book_skip(model: LoadedModel) -> None:
    s = Scorer("skip")
    assert s.admit(vec(book_valid=0), model).reason == "invalid_book"
    assert s.refused["invalid_book"] == 1
    assert s.admit(vec(book_valid=1), model).reason is None


def test_invalid_book_score(model: LoadedModel) -> None:
    s = Scorer("score")
    assert s.admit(vec(book_valid=0), model).reason is None
    assert sum(s.refused.values()) == 0


def test_default_policy_is_skip(model: LoadedModel) -> None:
    assert Scorer().invalid_book == "skip"
    assert Scorer().admit(vec(book_valid=0), model).reason == "invalid_book"


def test_symbols(model: LoadedModel) -> None:
    s = Scorer(symbols=["BTCUSDT", "ETHUSDT"])
    assert s.admit(vec("SOLUSDT"), model).reason == "symbol_not_scored"
    assert s.admit(vec("BTCUSDT2"), model).reason == "symbol_not_scored"
    assert s.admit(vec("ETHUSDT"), model).reason is None
    # a symbol not scored is refused for that reason even without a model
    assert s.admit(vec("SOLUSDT"), None).reason == "symbol_not_scored"
    assert s.refused == {"symbol_not_scored": 3}
    # every symbol when none are configured
    assert Scorer().admit(vec("SOLUSDT"), model).reason is None


def test_refusals_counted_by_reason(model: LoadedModel) -> None:
    s = Scorer(symbols=["BTCUSDT"])
    s.admit(vec("XRPUSDT"), model)
    s.admit(vec(), None)
    s.admit(vec(), None)
    s.admit(vec(registry_hash=OTHER), model)
    s.admit(vec(width=1), model)
    s.admit(vec(book_valid=0), model)
    s.admit(vec(), model)
    assert s.refused == {"symbol_not_scored": 1, "no_model": 2, "registry_mismatch": 1, "width_mismatch": 1,
                         "invalid_book": 1}


def test_score_equals_the_estimators_probabilities(model: LoadedModel, est: HistGradientBoostingClassifier) -> None:
    assert est.classes_.tolist() == [-1, 0, 1]
    s = Scorer()
    vectors = [vec(seed=i) for i in range(20)]
    # a few with missing and infinite values: infinities are scored as missing
    vectors[3].values[1] = np.nan
    vectors[4].values[0] = np.inf
    p = s.score(vectors, model)
    assert p.shape == (20, 3)
    x = np.stack([v.values for v in vectors])
    x_missing = np.where(np.isinf(x), np.nan, x)
    np.testing.assert_array_equal(p, est.predict_proba(x_missing))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert s.scored == 20
    s.score(vectors[:5], model)
    assert s.scored == 25


def test_score_puts_columns_in_class_order() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    y = np.where(x[:, 0] > 0, 1, 0)  # the model never saw -1
    est2 = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)
    m = LoadedModel("fedcba9876543210", HASH, ("a", "b"), est2, {})
    vectors = [WireVector(1, "BTCUSDT", 1, row.copy(), HASH) for row in x[:10]]
    p = Scorer().score(vectors, m)
    ref = est2.predict_proba(x[:10])
    np.testing.assert_array_equal(p[:, 0], 0.0)
    np.testing.assert_array_equal(p[:, 1:], ref)


def test_bad_policy() -> None:
    with pytest.raises(ValueError, match="maybe"):
        Scorer("maybe")
