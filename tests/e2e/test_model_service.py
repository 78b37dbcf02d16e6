"""End to end: simulator → shard → dataset → model-service trains, activates, scores live vectors.

Real processes throughout. The dataset is built through the shard's API; model-service trains on its
id through its own API (bad requests get 400), activates it, and its predictions of live vectors
equal the saved model's probabilities for the very vectors the shard published. The announcement
of the dataset also trains a second model (``auto_train``). A registry reload in the shard makes
model-service refuse the new vectors and count them; a restart keeps the models and the active one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from api.wire import decode as decode_vector
from model_service import wire
from model_service.artifacts import ModelStore
from tests.api.fakes import OpenApiChecker
from tests.e2e import harness as h
from tools.registry_file import default_registry_text

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
NEW_FEATURE = "  - {name: vol_3s_model_e2e, function: volume, window: 3s}\n"


def _post(port: int, path: str, doc: object) -> tuple[int, dict]:
    status, body = h.request(port, path, "POST", json.dumps(doc).encode(), {"Content-Type": "application/json"},
                             timeout=30)
    return status, json.loads(body)


def _metric(port: int, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(h.get(port, "/metrics")[1].decode()):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def _drain(sock: zmq.Socket) -> list[list[bytes]]:
    out = []
    while sock.poll(0):
        out.append(sock.recv_multipart())
    return out


def _done(port: int, model_id: str, timeout: float = 90) -> dict:
    return h.wait_for(lambda: (s := h.get_json(port, f"/model/{model_id}")[1])["status"] in ("done", "failed") and s,
                      timeout, f"model {model_id} trained", every=0.3)


@pytest.mark.timeout(300)
def test_a_model_trained_on_a_shard_dataset_scores_its_live_vectors_and_refuses_another_registry(tmp_path: Path) -> None:
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=300)
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS)
    shard_port = h.load(shard_cfg)["api"]["port"]
    ms_cfg = h.model_service_config(tmp_path, [shard_cfg], auto_train={"enabled": True, "horizon": "1s",
                                                                        "model": {"kind": "logistic"}})
    ms = h.load(ms_cfg)
    port = ms["api"]["port"]
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    model = h.start_model_service(ms_cfg, tmp_path / "model.log")
    ctx = zmq.Context()
    preds, vecs = ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)
    preds.connect(ms["publish"]["endpoint"])
    preds.subscribe(wire.TOPIC_PREFIX)
    vecs.connect(h.load(shard_cfg)["publish"]["endpoint"])
    vecs.subscribe(b"features.live.")
    try:
        checker = OpenApiChecker(h.get_json(port, "/openapi.json")[1])
        assert h.get_json(port, "/health")[1]["status"] == "no_model"
        time.sleep(32)
        schema = h.get_json(shard_port, "/features/schema")[1]
        ticks = h.get_json(shard_port, "/features/latest?symbol=BTCUSDT")[1]["ts_ns"]
        status, built = h.request(shard_port, f"/dataset/build?from={ticks - 30 * 10**9}&to={ticks}&horizons=1s,2s"
                                  "&threshold_bps=0.5", "POST", b"", timeout=30)
        assert status == 202, built
        ds_id = json.loads(built)["dataset_id"]
        h.wait_for(lambda: h.get_json(shard_port, f"/dataset/{ds_id}")[1]["status"] == "done", 90, "the dataset")

        # Bad requests: each a 400 naming the problem, validated against the OpenAPI document.
        for doc, words in (({"dataset_id": "0123456789abcdef", "horizon": "1s"}, "no dataset"),
                           ({"dataset_id": "../../etc", "horizon": "1s"}, "malformed dataset_id"),
                           ({"dataset_path": str(tmp_path), "horizon": "1s"}, "not a Feature Service dataset"),
                           ({"dataset_id": ds_id, "horizon": "5m"}, "no horizon '5m'"),
                           ({"dataset_id": ds_id, "horizon": "1s", "model": {"kind": "forest"}}, "not one of"),
                           ({"dataset_id": ds_id, "horizon": "1s",
                             "model": {"kind": "hist_gradient_boosting", "params": {"max_iter": -3}}}, "max_iter"),
                           ({"dataset_id": ds_id, "horizon": "1s", "colour": "red"}, "unknown field")):
            status, body = _post(port, "/model/train", doc)
            assert status == 400 and words in body["error"], (doc, body)
            checker.validate("POST", "/model/train", status, "application/json", body)

        req = {"dataset_id": ds_id, "horizon": "1s", "model": {"kind": "hist_gradient_boosting",
                                                               "params": {"max_iter": 30}}}
        status, first = _post(port, "/model/train", req)
        assert status == 202, first
        checker.validate("POST", "/model/train", status, "application/json", first)
        assert _post(port, "/model/train", req)[1]["model_id"] == first["model_id"]
        model_id = first["model_id"]
        status, early = _post(port, "/model/activate", {"model_id": "f" * 16})
        assert status == 404, early
        got = _done(port, model_id)
        assert got["status"] == "done", got
        checker.validate("GET", "/model/{model_id}", 200, "application/json", got)
        meta = got["metadata"]
        assert meta["dataset_id"] == ds_id and meta["registry_hash"] == schema["registry_hash"]
        assert meta["feature_names"] == schema["names"] and meta["kind"] == "hist_gradient_boosting"
        assert set(meta["metrics"]) == {"validation", "test"} and "baseline" in meta["metrics"]["test"]
        assert meta["rows"]["train"] > 0 and meta["split"]["gap_ns"] == 10**9

        status, act = _post(port, "/model/activate", {"model_id": model_id})
        assert status == 200 and act["model_id"] == model_id, act
        _drain(preds), _drain(vecs)
        time.sleep(4)
        live = [wire.decode(m) for m in _drain(preds)]
        published = {(v.ts_ns, v.symbol): v for v in map(decode_vector, _drain(vecs))}
        assert {p["symbol"] for p in live} == set(SYMBOLS), live[:3]
        assert all(p["model_id"] == model_id and p["registry_hash"] == schema["registry_hash"] for p in live)
        saved = ModelStore(Path(ms["data_dir"]) / "models").load(model_id)
        matched = [p for p in live if (p["ts"], p["symbol"]) in published]
        assert len(matched) >= len(SYMBOLS) * 2, (len(matched), len(live))
        for p in matched:
            v = published[(p["ts"], p["symbol"])]
            want = saved.predict(v.values[None, :])[0]
            assert [p["probabilities"][k] for k in ("-1", "0", "1")] == want.tolist(), (p, want)
        latency = sorted(p["latency_ns"] for p in live)
        assert latency[0] > 0 and latency[len(latency) // 2] < 50_000_000, latency  # a loaded CI host stalls one
        status, latest = h.get_json(port, "/model/predict/latest?symbol=ETHUSDT")
        assert status == 200 and latest["model_id"] == model_id
        checker.validate("GET", "/model/predict/latest", 200, "application/json", latest)
        health = h.get_json(port, "/health")[1]
        assert health["status"] == "ok" and health["active_model"]["model_id"] == model_id, health
        checker.validate("GET", "/health", 200, "application/json", health)

        # The dataset's announcement trained a logistic model too (auto_train), without activating it.
        listed = h.wait_for(lambda: [m for m in h.get_json(port, "/model/list")[1]["models"]
                                     if m["model_id"] != model_id and m["status"] == "done"], 90, "the auto-trained model")
        assert listed[0]["dataset_id"] == ds_id and not listed[0]["active"]

        # A registry reload in the shard: the new vectors are refused, counted per hash, and /health says so.
        status, reloaded = h.post_registry(shard_port, default_registry_text() + NEW_FEATURE)
        assert status == 200, reloaded
        new_hash = reloaded["registry_hash"]
        h.wait_for(lambda: h.get_json(port, "/health")[1]["status"] == "skew", 10, "the skew status")
        _drain(preds)
        time.sleep(2)
        assert not [m for m in _drain(preds) if wire.decode(m)["registry_hash"] == new_hash]
        health = h.get_json(port, "/health")[1]
        assert new_hash in health["message"] and health["skew"][new_hash] >= len(SYMBOLS), health
        assert _metric(port, "ms_skew_vectors_total", registry_hash=new_hash) >= len(SYMBOLS)
        skews = [e for e in model.events() if e["event"] == "registry_skew"]
        assert len(skews) == 1 and skews[0]["registry_hash"] == new_hash, skews

        # A restart keeps every model and the active one; the new registry is still refused.
        assert model.stop() == 0, model.text()[-2000:]
        model = h.start_model_service(ms_cfg, tmp_path / "model.log")
        after = h.get_json(port, "/model/list")[1]
        assert after["active"] == model_id and len(after["models"]) == 2, after
        h.wait_for(lambda: h.get_json(port, "/health")[1]["skew"].get(new_hash, 0) > 0, 10, "refusals after restart")
        assert h.get_json(port, "/health")[1]["active_model"]["model_id"] == model_id
    finally:
        preds.close(0), vecs.close(0), ctx.term()
        sim.stop()
        assert model.stop() == 0, model.text()[-3000:]
        assert shard.stop() == 0, shard.text()[-3000:]
