"""`model_service.models`: the request's model spec is checked (kinds, parameter names and values, early
stopping), `fit` survives an all-missing column and never uses it, `as_input` maps ±inf to NaN."""

from __future__ import annotations

import numpy as np
import pytest

from model_service.models import AUTO, KINDS, ModelSpecError, as_input, fit, make, normalise


def test_normalise_none_is_auto_with_both_kinds() -> None:
    assert normalise(None) == ("auto", {"logistic": {}, "hist_gradient_boosting": {}})
    assert normalise({}) == ("auto", {"logistic": {}, "hist_gradient_boosting": {}})
    assert normalise({"kind": "auto"}) == ("auto", {"logistic": {}, "hist_gradient_boosting": {}})
    assert AUTO == "auto" and set(KINDS) == {"logistic", "hist_gradient_boosting"}


@pytest.mark.parametrize("kind", ["logistic", "hist_gradient_boosting"])
def test_normalise_one_kind(kind: str) -> None:
    assert normalise({"kind": kind}) == (kind, {kind: {}})


def test_normalise_keeps_valid_params() -> None:
    assert normalise({"kind": "logistic", "params": {"C": 0.5, "class_weight": "balanced"}}) == (
        "logistic", {"logistic": {"C": 0.5, "class_weight": "balanced"}})
    assert normalise({"kind": "hist_gradient_boosting", "params": {"max_iter": 50, "learning_rate": 0.05}}) == (
        "hist_gradient_boosting", {"hist_gradient_boosting": {"max_iter": 50, "learning_rate": 0.05}})


def test_unknown_kind() -> None:
    with pytest.raises(ModelSpecError, match="'random_forest' is not one of logistic, hist_gradient_boosting, auto"):
        normalise({"kind": "random_forest"})


@pytest.mark.parametrize("spec", ["logistic", ["logistic"], {"kind": "logistic", "extra": 1},
                                  {"kind": "logistic", "params": [1]}])
def test_malformed_spec(spec: object) -> None:
    with pytest.raises(ModelSpecError):
        normalise(spec)


def test_unknown_parameter_is_named_with_the_known_ones() -> None:
    with pytest.raises(ModelSpecError) as e:
        normalise({"kind": "logistic", "params": {"depth": 3}})
    msg = str(e.value)
    assert "'depth'" in msg and "LogisticRegression" in msg
    assert "known:" in msg and "C" in msg and "max_iter" in msg and "class_weight" in msg
    with pytest.raises(ModelSpecError) as e:
        normalise({"kind": "hist_gradient_boosting", "params": {"C": 1.0}})
    msg = str(e.value)
    assert "'C'" in msg and "HistGradientBoostingClassifier" in msg
    assert "max_iter" in msg and "learning_rate" in msg


@pytest.mark.parametrize(("kind", "params"), [
    ("hist_gradient_boosting", {"max_iter": -1}),
    ("hist_gradient_boosting", {"learning_rate": 0}),
    ("hist_gradient_boosting", {"max_iter": "many"}),
    ("logistic", {"C": -1}),
    ("logistic", {"max_iter": -1}),
    ("logistic", {"solver": "magic"}),
])
def test_invalid_values(kind: str, params: dict) -> None:
    with pytest.raises(ModelSpecError, match="model.params"):
        normalise({"kind": kind, "params": params})
    with pytest.raises(ModelSpecError):
        make(kind, params)


@pytest.mark.parametrize("value", [True, "auto"])
def test_early_stopping_refused(value: object) -> None:
    with pytest.raises(ModelSpecError, match="early_stopping"):
        normalise({"kind": "hist_gradient_boosting", "params": {"early_stopping": value}})
    with pytest.raises(ModelSpecError, match="early_stopping"):
        normalise({"kind": "auto", "params": {"hist_gradient_boosting": {"early_stopping": value}}})


def test_early_stopping_false_accepted() -> None:
    kind, params = normalise({"kind": "hist_gradient_boosting", "params": {"early_stopping": False}})
    assert params == {"hist_gradient_boosting": {"early_stopping": False}}


def test_hist_gradient_boosting_defaults() -> None:
    est = make("hist_gradient_boosting", {})
    assert est.early_stopping is False
    assert est.random_state == 0


def test_auto_params_per_kind() -> None:
    kind, params = normalise({"kind": "auto", "params": {"logistic": {"C": 2.0},
                                                         "hist_gradient_boosting": {"max_iter": 20}}})
    assert kind == "auto"
    assert params == {"logistic": {"C": 2.0}, "hist_gradient_boosting": {"max_iter": 20}}
    kind, params = normalise({"kind": "auto", "params": {"logistic": {"C": 2.0}}})
    assert params == {"logistic": {"C": 2.0}, "hist_gradient_boosting": {}}


def test_auto_with_a_non_kind_key() -> None:
    with pytest.raises(ModelSpecError, match="'C'"):
        normalise({"kind": "auto", "params": {"C": 1.0}})
    with pytest.raises(ModelSpecError, match="'max_iter'"):
        normalise({"kind": "auto", "params": {"logistic": {}, "max_iter": 3}})


def test_auto_checks_each_kinds_params() -> None:
    with pytest.raises(ModelSpecError, match="'C'"):
        normalise({"kind": "auto", "params": {"hist_gradient_boosting": {"C": 1.0}}})
    with pytest.raises(ModelSpecError, match="model.params"):
        normalise({"kind": "auto", "params": {"logistic": {"C": -1}}})


def test_make_refuses_non_object_params() -> None:
    with pytest.raises(ModelSpecError, match="must be an object"):
        make("logistic", [1, 2])  # type: ignore[arg-type]


def _data(seed: int = 1, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.where(x[:, 0] + 0.5 * x[:, 2] > 0.6, 1, np.where(x[:, 0] < -0.6, -1, 0))
    return x, y


@pytest.mark.parametrize("kind", ["logistic", "hist_gradient_boosting"])
def test_fit_with_an_all_missing_column(kind: str) -> None:
    x, y = _data()
    x[:, 1] = np.nan
    x[::7, 3] = np.nan  # partly missing: not reported
    before = x.copy()
    params = {"max_iter": 20} if kind == "hist_gradient_boosting" else {}
    est, empty = fit(kind, params, x, y)
    assert empty == [1]
    np.testing.assert_array_equal(x, before)  # the caller's matrix is not changed
    assert est.classes_.tolist() == [-1, 0, 1]
    # the empty column is never used: any value there at scoring time gives the same probabilities
    rows = as_input(_data(seed=2, n=50)[0])
    rows[::5, 3] = np.nan
    probas = []
    for value in (0.0, 1e6, -3.5, np.nan):
        r = rows.copy()
        r[:, 1] = value
        probas.append(est.predict_proba(r))
    for p in probas[1:]:
        np.testing.assert_array_equal(p, probas[0])
    np.testing.assert_allclose(probas[0].sum(axis=1), 1.0, rtol=1e-12)
    # and it does learn from the others
    assert (est.predict(as_input(x)) == y).mean() > 0.8


@pytest.mark.parametrize("kind", ["logistic", "hist_gradient_boosting"])
def test_fit_reports_no_empty_column(kind: str) -> None:
    x, y = _data()
    est, empty = fit(kind, {}, x, y)
    assert empty == []
    assert est.predict_proba(x).shape == (len(x), 3)


def test_fit_reports_every_empty_column() -> None:
    x, y = _data()
    x[:, 1] = np.nan
    x[:, 3] = np.nan
    _, empty = fit("hist_gradient_boosting", {"max_iter": 5}, x, y)
    assert empty == [1, 3]


def test_as_input_inf_to_nan() -> None:
    src = np.array([[1.0, np.inf, -np.inf], [np.nan, 2.0, 3.0]])
    before = src.copy()
    out = as_input(src)
    assert out.dtype == np.float64
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(np.isnan(out), [[False, True, True], [True, False, False]])
    assert out[0, 0] == 1.0 and out[1, 1] == 2.0 and out[1, 2] == 3.0
    np.testing.assert_array_equal(src, before)  # input untouched


def test_as_input_one_vector_is_one_row() -> None:
    out = as_input(np.array([1.0, -np.inf, 3.0]))
    assert out.shape == (1, 3)
    assert out[0, 0] == 1.0 and np.isnan(out[0, 1]) and out[0, 2] == 3.0


def test_as_input_casts_to_float64() -> None:
    out = as_input([[1, 2], [3, 4]])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])
    out = as_input(np.array([1.5, np.inf], dtype=np.float32))
    assert out.dtype == np.float64 and out.shape == (1, 2) and np.isnan(out[0, 1])
