"""Train requests, `run_training` end to end on a hand-made learnable dataset, and the model store: metadata
checked against hand counts and sklearn's metrics of the saved model, statuses, the active pointer, refusals."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.metrics import log_loss as sk_log_loss

from model_service.artifacts import ModelError, ModelStore, load_estimator
from model_service.models import KINDS
from model_service.request import RequestError, TrainRequest, parse
from model_service.train import run_training
from tests.model_service.dataset_factory import DATASET_ID, H60_NS, REGISTRY_HASH, learnable, ns

T0 = ns("2026-09-21T00:00:00")
STEP = 10_000_000_000
INVALID = {"ETHUSDT": [50, 51, 52]}


@pytest.fixture(scope="module")
def datasets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="module")
def dataset(datasets_dir: Path) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """300 ticks x 2 symbols 10 s apart; ETH ticks 50-52 invalid; the last 6 ticks without labels."""
    return learnable(datasets_dir / DATASET_ID, n_ticks=300, step_ns=STEP, invalid=INVALID, null_tail=6)


@pytest.fixture(scope="module")
def request_(dataset: tuple[Path, Any], datasets_dir: Path) -> TrainRequest:
    return parse({"dataset_path": str(dataset[0]), "horizon": "60s", "model": {"kind": "auto"}}, datasets_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, request_: TrainRequest) -> tuple[Path, dict[str, Any]]:
    models_dir = tmp_path_factory.mktemp("models")
    return models_dir, run_training(str(models_dir), request_.as_dict())


def _rows(raw: dict[str, dict[str, np.ndarray]], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid labelled rows of ticks [lo, hi), ordered by (tick, symbol): a naive re-derivation."""
    xs, ys = [], []
    for k in range(lo, hi):
        for sym in sorted(raw):
            r = raw[sym]
            if r["book_valid"][k] == 1 and not np.isnan(r["label"][k]):
                xs.append([r["f1"][k], r["f2"][k]])
                ys.append(int(r["label"][k]))
    return np.array(xs), np.array(ys)


# the request


def test_parse(request_: TrainRequest, dataset: tuple[Path, Any]) -> None:
    assert request_.dataset_path == str(dataset[0].resolve())
    assert request_.dataset_id == DATASET_ID
    assert request_.registry_hash == REGISTRY_HASH
    assert request_.horizon == "60s"
    assert request_.kind == "auto"
    assert request_.params == {"logistic": {}, "hist_gradient_boosting": {}}
    assert (request_.validation, request_.test) == (0.2, 0.2)
    assert TrainRequest(**request_.as_dict()) == request_


def test_model_id(request_: TrainRequest, datasets_dir: Path, dataset: tuple[Path, Any]) -> None:
    mid = request_.model_id()
    assert re.fullmatch(r"[0-9a-f]{16}", mid)
    again = parse({"dataset_path": str(dataset[0]), "horizon": "60s", "model": {"kind": "auto"}}, datasets_dir)
    assert again.model_id() == mid
    # by id instead of path, horizon and model left to their defaults: the same request, the same id
    by_id = parse({"dataset_id": DATASET_ID}, datasets_dir)
    assert by_id.model_id() == mid
    others = [
        parse({"dataset_id": DATASET_ID, "model": {"kind": "logistic"}}, datasets_dir),
        parse({"dataset_id": DATASET_ID, "model": {"kind": "auto", "params": {"logistic": {"C": 0.5}}}},
              datasets_dir),
        parse({"dataset_id": DATASET_ID, "split": {"validation": 0.25}}, datasets_dir),
        parse({"dataset_id": DATASET_ID, "split": {"test": 0.1}}, datasets_dir),
        dataclasses.replace(request_, horizon="300s"),
        dataclasses.replace(request_, registry_hash="f" * 64),
        dataclasses.replace(request_, dataset_id="0" * 16),
    ]
    ids = [o.model_id() for o in others]
    assert mid not in ids
    assert len(set(ids)) == len(ids)
    # the path alone does not change it
    assert dataclasses.replace(request_, dataset_path="/elsewhere").model_id() == mid


@pytest.mark.parametrize(("body", "what"), [
    ({"dataset_id": DATASET_ID, "colour": 1}, "unknown field 'colour'"),
    ({"dataset_id": DATASET_ID, "horizon": "300s"}, "no horizon '300s'"),
    ({"dataset_id": DATASET_ID, "horizon": ""}, "horizon is required"),
    ({"dataset_id": DATASET_ID, "split": {"validation": 0.5}}, "split.validation"),
    ({"dataset_id": DATASET_ID, "split": {"test": True}}, "split.test"),
    ({"dataset_id": DATASET_ID, "split": {"gap": 1}}, "split must be an object"),
    ({"dataset_id": DATASET_ID, "model": {"kind": "svm"}}, "model.kind"),
    ({"dataset_id": "../x"}, "malformed dataset_id"),
    ({}, "exactly one"),
    ([], "must be a JSON object"),
])
def test_parse_errors(datasets_dir: Path, dataset: tuple[Path, Any], body: Any, what: str) -> None:
    with pytest.raises(RequestError, match=re.escape(what)):
        parse(body, datasets_dir)


# training


def test_run_training_done(trained: tuple[Path, dict[str, Any]], request_: TrainRequest) -> None:
    models_dir, result = trained
    assert result["status"] == "done", result
    assert result["model_id"] == request_.model_id()
    assert (models_dir / request_.model_id() / "model.skops").is_file()
    assert not list(models_dir.glob(".staging-*"))


def test_metadata(trained: tuple[Path, dict[str, Any]], request_: TrainRequest) -> None:
    models_dir, result = trained
    meta = json.loads((models_dir / request_.model_id() / "metadata.json").read_text())
    assert meta == result["metadata"]
    assert meta["model_id"] == request_.model_id()
    assert meta["dataset_id"] == DATASET_ID
    assert meta["registry_hash"] == REGISTRY_HASH
    assert meta["feature_names"] == ["f1", "f2"]
    assert meta["n_features"] == 2
    assert meta["horizon"] == "60s" and meta["label"] == "label_60s"
    assert meta["kind"] in KINDS and meta["requested_kind"] == "auto"
    assert meta["classes"] == [-1, 0, 1]
    assert meta["features_missing_in_training"] == []
    assert isinstance(meta["training_seconds"], float | int) and meta["training_seconds"] >= 0
    assert isinstance(meta["code_version"], str) and meta["code_version"]
    # hand counts: 600 rows read; 3 invalid (ETH ticks 50-52), 12 null labels (ticks 294-299);
    # 294 ticks remain: t1 = tick int(294 * 0.6) = 176, t2 = tick int(294 * 0.8) = 235, gap 6 ticks;
    # train ticks 0-169 (340 - 3 rows), validation ticks 176-228, test ticks 235-293
    assert meta["rows"] == {"read": 600, "dropped": {"invalid_book": 3, "null_label": 12}, "used": 585,
                            "train": 337, "validation": 106, "test": 118, "left_out_in_gaps": 24}
    assert meta["split"] == {"validation": 0.2, "test": 0.2, "gap_ns": H60_NS,
                             "validation_from_ns": T0 + 176 * STEP, "test_from_ns": T0 + 235 * STEP,
                             "train_from_ns": T0, "test_to_ns": T0 + 293 * STEP}
    assert meta["split"]["gap_ns"] == 60e9
    for part, n in (("validation", 106), ("test", 118)):
        m = meta["metrics"][part]
        assert {"accuracy", "log_loss", "per_class", "confusion", "baseline"} <= set(m)
        assert m["rows"] == n
        assert set(m["per_class"]) == {"-1", "0", "1"}
        assert sum(sum(r) for r in m["confusion"]["rows_true_cols_predicted"]) == n
    assert set(meta["candidates"]) == set(KINDS)
    best = min(meta["candidates"], key=lambda k: meta["candidates"][k]["validation_log_loss"])
    assert meta["kind"] == best
    assert meta["candidates"][best]["validation_log_loss"] == meta["metrics"]["validation"]["log_loss"]


def test_saved_model_reproduces_its_metrics(trained: tuple[Path, dict[str, Any]], request_: TrainRequest,
                                            dataset: tuple[Path, Any]) -> None:
    models_dir, result = trained
    meta = result["metadata"]
    model = ModelStore(models_dir).load(request_.model_id())
    raw = dataset[1]
    for part, (lo, hi) in (("validation", (176, 229)), ("test", (235, 294))):
        x, y = _rows(raw, lo, hi)
        p = model.predict(x)
        pred = np.array([-1, 0, 1])[p.argmax(axis=1)]
        m = meta["metrics"][part]
        assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
        assert m["log_loss"] == pytest.approx(sk_log_loss(y, p, labels=[-1, 0, 1]), rel=1e-9)
        assert m["confusion"]["rows_true_cols_predicted"] == confusion_matrix(y, pred, labels=[-1, 0, 1]).tolist()
        # the baseline: the majority class of the training labels (ticks 0-169)
        _, y_train = _rows(raw, 0, 170)
        majority = [-1, 0, 1][int(np.argmax([(y_train == c).sum() for c in (-1, 0, 1)]))]
        assert m["baseline"]["predict"] == majority
        assert m["baseline"]["accuracy"] == pytest.approx((y == majority).mean(), abs=1e-12)
        prior = np.array([(y_train == c).mean() for c in (-1, 0, 1)])
        base = sk_log_loss(y, np.tile(prior, (len(y), 1)), labels=[-1, 0, 1])
        assert m["baseline"]["log_loss"] == pytest.approx(base, rel=1e-9)
    # labels follow f1 exactly: the model beats the baseline clearly
    assert meta["metrics"]["test"]["accuracy"] > 0.85 > meta["metrics"]["test"]["baseline"]["accuracy"]


def test_loaded_model_predicts(trained: tuple[Path, dict[str, Any]], request_: TrainRequest,
                               dataset: tuple[Path, Any]) -> None:
    store = ModelStore(trained[0])
    a, b = store.load(request_.model_id()), store.load(request_.model_id())
    assert a.model_id == request_.model_id()
    assert a.registry_hash == REGISTRY_HASH and a.feature_names == ("f1", "f2")
    x, _ = _rows(dataset[1], 0, 294)
    x[::9, 1] = np.nan
    x[::13, 0] = np.inf
    pa_, pb = a.predict(x), b.predict(x)
    assert pa_.shape == (len(x), 3)
    np.testing.assert_array_equal(pa_, pb)
    np.testing.assert_allclose(pa_.sum(axis=1), 1.0, rtol=1e-12)
    # the compiled scorer (if any) gives the estimator's own probabilities
    assert a.estimator.classes_.tolist() == [-1, 0, 1]
    ref = a.estimator.predict_proba(np.where(np.isinf(x), np.nan, x))
    np.testing.assert_allclose(pa_, ref, rtol=1e-12, atol=1e-15)
    one = a.predict(x[5])
    np.testing.assert_array_equal(one, pa_[5:6])


def test_store_status_list_and_active(trained: tuple[Path, dict[str, Any]], request_: TrainRequest) -> None:
    store = ModelStore(trained[0])
    mid = request_.model_id()
    s = store.status(mid)
    assert s is not None and s["status"] == "done" and s["metadata"]["model_id"] == mid
    assert store.status("0" * 16) is None
    assert store.active_id() is None
    listed = store.list()
    assert [m["model_id"] for m in listed] == [mid]
    assert listed[0]["status"] == "done" and listed[0]["active"] is False
    assert listed[0]["dataset_id"] == DATASET_ID and listed[0]["horizon"] == "60s"
    assert listed[0]["test_accuracy"] == s["metadata"]["metrics"]["test"]["accuracy"]
    store.set_active(mid)
    assert store.active_id() == mid
    assert ModelStore(trained[0]).active_id() == mid  # a restart finds it
    assert [m["active"] for m in store.list()] == [True]


def test_fail_interrupted(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    ids = {"running": "a" * 16, "queued": "b" * 16, "failed": "c" * 16}
    for status, mid in ids.items():
        store.write_status(mid, status, request={"horizon": "60s", "for": status})
    assert sorted(store.fail_interrupted()) == sorted([ids["running"], ids["queued"]])
    for status in ("running", "queued"):
        s = store.status(ids[status])
        assert s["status"] == "failed"
        assert "interrupted" in s["error"]
        assert s["request"] == {"horizon": "60s", "for": status}
    assert store.status(ids["failed"]) == {"model_id": ids["failed"], "status": "failed",
                                           "request": {"horizon": "60s", "for": "failed"}}
    assert store.fail_interrupted() == []
    assert {m["model_id"]: m["status"] for m in store.list()} == dict.fromkeys(ids.values(), "failed")


@pytest.mark.parametrize("bad", ["../../etc", "A" * 16, "0" * 15, "", None])
def test_check_id(tmp_path: Path, bad: Any) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(ModelError, match="malformed model id"):
        store.check_id(bad)
    with pytest.raises(ModelError):
        store.status(bad)
    with pytest.raises(ModelError):
        store.load(bad)
    with pytest.raises(ModelError):
        store.set_active(bad)
    assert store.check_id("0123456789abcdef") == "0123456789abcdef"


def test_load_of_a_model_not_trained(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(ModelError, match="never requested"):
        store.load("0" * 16)
    store.write_status("1" * 16, "failed", error="boom")
    with pytest.raises(ModelError, match="not trained \\(failed: boom\\)"):
        store.load("1" * 16)


def test_training_on_one_label_fails(tmp_path: Path) -> None:
    d, _ = learnable(tmp_path / "ds", n_ticks=120, label_rule="zero", null_tail=0)
    req = parse({"dataset_path": str(d), "horizon": "60s", "model": {"kind": "logistic"}}, tmp_path)
    models_dir = tmp_path / "models"
    result = run_training(str(models_dir), req.as_dict())
    assert result["status"] == "failed"
    assert "only label 0" in result["error"]
    s = ModelStore(models_dir).status(req.model_id())
    assert s["status"] == "failed" and "only label 0" in s["error"]
    assert s["request"] == req.as_dict()
    assert not (models_dir / req.model_id()).exists()
    with pytest.raises(ModelError, match="only label 0"):
        ModelStore(models_dir).load(req.model_id())


def test_training_on_a_changed_dataset_fails(tmp_path: Path, request_: TrainRequest) -> None:
    doc = {**request_.as_dict(), "registry_hash": "f" * 64}
    result = run_training(str(tmp_path), doc)
    assert result["status"] == "failed" and "changed since the request" in result["error"]


def test_training_on_a_too_short_dataset_fails(tmp_path: Path) -> None:
    d, _ = learnable(tmp_path / "ds", n_ticks=20, null_tail=0)  # 200 s of ticks: the 60 s gaps eat it
    req = parse({"dataset_path": str(d), "model": {"kind": "logistic"}}, tmp_path)
    result = run_training(str(tmp_path / "models"), req.as_dict())
    assert result["status"] == "failed" and "too short" in result["error"]


def test_load_estimator_refuses_a_file_that_is_not_skops(tmp_path: Path) -> None:
    p = tmp_path / "model.skops"
    p.write_bytes(b"this is not a zip file")
    with pytest.raises(ModelError, match="not a readable skops model"):
        load_estimator(p)
    with pytest.raises(ModelError, match="not a readable skops model"):
        load_estimator(tmp_path / "absent.skops")


def test_load_estimator_refuses_other_classes(tmp_path: Path) -> None:
    import skops.io as sio

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    est = HistGradientBoostingClassifier(max_iter=2).fit(x, np.arange(60) % 3 + 1)  # classes 1, 2, 3
    p = tmp_path / "model.skops"
    sio.dump(est, p)
    with pytest.raises(ModelError, match="not labels -1, 0, 1"):
        load_estimator(p)
