"""model-service as a user meets it, with no shard: its API's answers to mistakes, its CLI, and the vectors it
refuses. A real `model-service serve` process; the test itself publishes features.live vectors to it.

The dataset is built by `feature-service dataset build` from a synthetic compacted journal (10 minutes,
two symbols); every 4xx is validated against the service's OpenAPI document.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zmq

from api.wire import WireVector, encode
from model_service import wire
from model_service.artifacts import ModelStore
from tests.api.fakes import OpenApiChecker
from tests.e2e import harness as h
from tools.bench.synthetic_journal import write_journal

NS = 1_000_000_000
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = 1_790_000_000 * NS
TOKEN = "s3cret-token"


def _cli(*args: str, module: str = "tools.cli") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300,
                          cwd=h.ROOT)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(a shard data dir with one built dataset, its id)."""
    root = tmp_path_factory.mktemp("msapi")
    write_journal(root / "data" / "journal", SYMBOLS, 600, rate=40, start_ns=START)
    cfg = root / "shard.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(root / "data"), "shard": {"symbols": SYMBOLS}}))
    assert _cli("-q", "compact", "--config", str(cfg)).returncode == 0
    done = _cli("-q", "dataset", "build", "--config", str(cfg), "--from", str(START + 10 * NS),
                "--to", str(START + 598 * NS), "--horizons", "10s,30s", "--threshold-bps", "0.5")
    assert done.returncode == 0, done.stderr
    return root / "data", json.loads(done.stdout)["dataset_id"]


def _post(port: int, path: str, doc: object, token: str | None = TOKEN, ctype: str = "application/json"):  # noqa: ANN202
    headers = {"Content-Type": ctype} | ({"Authorization": f"Bearer {token}"} if token else {})
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    status, raw = h.request(port, path, "POST", body, headers, timeout=30)
    return status, json.loads(raw)


def _config(tmp: Path, data: Path, **extra: object) -> Path:
    doc = {"data_dir": str(tmp / "ms"), "datasets_dir": str(data / "datasets"),
           "subscribe": {"endpoints": [f"ipc://{tmp}/live", f"ipc://{tmp}/live2"], "symbols": SYMBOLS},
           "publish": {"endpoint": f"ipc://{tmp}/pred"}, "api": {"port": h.free_port(), "token": TOKEN}, **extra}
    path = tmp / "ms.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.timeout(240)
def test_api_mistakes_are_clear_4xx_and_only_the_right_vectors_are_scored(dataset: tuple[Path, str],
                                                                          tmp_path: Path) -> None:
    data, ds_id = dataset
    cfg = _config(tmp_path, data)
    port = h.load(cfg)["api"]["port"]
    ctx = zmq.Context()
    live, live2, preds = ctx.socket(zmq.PUB), ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    live.bind(f"ipc://{tmp_path}/live")
    live2.bind(f"ipc://{tmp_path}/live2")  # a second shard's features.live
    proc = h.start_model_service(cfg, tmp_path / "ms.log")
    preds.connect(f"ipc://{tmp_path}/pred")
    preds.subscribe(wire.TOPIC_PREFIX)
    try:
        checker = OpenApiChecker(h.get_json(port, "/openapi.json")[1])

        def check(method: str, path: str, status: int, body: dict, want: int, words: str) -> None:
            assert status == want and words in body["error"], (method, path, status, body)
            checker.validate(method, checker.template(path.split("?")[0]), status, "application/json", body)

        req = {"dataset_id": ds_id, "horizon": "10s", "model": {"kind": "logistic"}}
        check("POST", "/model/train", *_post(port, "/model/train", req, token=None), 401, "Bearer")
        check("POST", "/model/train", *_post(port, "/model/train", req, token="wrong"), 401, "wrong bearer token")
        check("POST", "/model/train", *_post(port, "/model/train", b"{not json"), 400, "not JSON")
        check("POST", "/model/train", *_post(port, "/model/train", req, ctype="text/csv"), 415, "text/csv")
        check("POST", "/model/train", *_post(port, "/model/train", {**req, "horizon": "1h"}), 400, "has 10s, 30s")
        check("POST", "/model/train", *_post(port, "/model/train", {**req, "split": {"test": 0.9}}), 400, "split.test")
        check("POST", "/model/train", *_post(port, "/model/train", {**req, "dataset_path": "/x"}), 400, "exactly one")
        check("GET", "/model/zzz", *h.get_json(port, "/model/zzz"), 400, "malformed model id")
        check("GET", "/model/0123456789abcdef", *h.get_json(port, "/model/0123456789abcdef"), 404, "no model")
        check("GET", "/model/predict/latest", *h.get_json(port, "/model/predict/latest?symbol=XRPUSDT"), 404,
              "not scored here")
        check("GET", "/model/predict/latest", *h.get_json(port, "/model/predict/latest?symbol=BTCUSDT"), 503,
              "no active model")
        check("GET", "/model/predict/latest", *h.get_json(port, "/model/predict/latest?symbol=btc"), 400, "malformed")
        check("POST", "/model/activate", *_post(port, "/model/activate", {"id": "x"}), 400, "model_id")

        status, accepted = _post(port, "/model/train", req)
        assert status == 202 and accepted["status"] == "queued", accepted
        model_id = accepted["model_id"]
        check("POST", "/model/activate", *_post(port, "/model/activate", {"model_id": model_id}), 409,
              "only a trained model")
        got = h.wait_for(lambda: (s := h.get_json(port, f"/model/{model_id}")[1])["status"] == "done" and s, 120,
                         "training", every=0.2)
        assert got["metadata"]["rows"]["dropped"]["null_label"] > 0  # the last 10 s of the range have no target
        assert _post(port, "/model/train", req)[1] == {"model_id": model_id, "status": "done"}
        assert _post(port, "/model/activate", {"model_id": model_id})[0] == 200

        saved = ModelStore(tmp_path / "ms" / "models").load(model_id)
        width, rh = len(saved.feature_names), saved.registry_hash
        rng = np.random.default_rng(3)
        rows = rng.normal(size=(4, width))
        sent = [WireVector(START + i * NS, "BTCUSDT", 1, rows[i], rh) for i in range(4)]
        refused = [WireVector(START, "ETHUSDT", 0, rows[0], rh),                 # invalid book: skipped
                   WireVector(START, "ETHUSDT", 1, rows[0][:-1], rh),            # one value short
                   WireVector(START, "ETHUSDT", 1, rows[0], "cd" * 32),          # another registry
                   WireVector(START, "SOLUSDT", 1, rows[0], rh)]                 # not subscribed: ZMQ filters it
        h.wait_for(lambda: (live.send_multipart(encode(sent[0])), preds.poll(100))[1], 20, "the first prediction")
        preds.recv_multipart()
        for v in refused + sent[1:]:
            live.send_multipart(encode(v))
        live.send_multipart([b"features.live.BTCUSDT", b"\xc1 not msgpack"])
        out = [wire.decode(preds.recv_multipart()) for _ in range(3) if preds.poll(5000)]
        assert [p["ts"] for p in out] == [v.ts_ns for v in sent[1:]] and not preds.poll(500)
        for p, v in zip(out, sent[1:], strict=True):
            assert [p["probabilities"][k] for k in ("-1", "0", "1")] == saved.predict(v.values[None, :])[0].tolist()
        health = h.get_json(port, "/health")[1]
        checker.validate("GET", "/health", 200, "application/json", health)
        assert health["vectors"]["refused"] == {"invalid_book": 1, "width_mismatch": 1, "registry_mismatch": 1}, health
        assert health["skew"] == {"cd" * 32: 1} and health["vectors"]["bad"] == 1
        assert health["vectors"]["scored"] == 4 and health["vectors"]["received"] == 4 + 3
        metrics = h.get(port, "/metrics")[1].decode()
        assert f'ms_skew_vectors_total{{registry_hash="{"cd" * 32}"}} 1.0' in metrics
        assert 'ms_vectors_refused_total{reason="invalid_book"} 1.0' in metrics
        listed = h.get_json(port, "/model/list")[1]
        checker.validate("GET", "/model/list", 200, "application/json", listed)
        assert listed["active"] == model_id
        # The second endpoint's vectors are scored by the same socket.
        other = WireVector(START + 99 * NS, "ETHUSDT", 1, rows[3], rh)
        got = h.wait_for(lambda: (live2.send_multipart(encode(other)), preds.poll(200) and
                                  wire.decode(preds.recv_multipart()))[1], 20, "a prediction of the second endpoint")
        assert got["symbol"] == "ETHUSDT" and got["ts"] == other.ts_ns
    finally:
        live.close(0), live2.close(0), preds.close(0), ctx.term()
        assert proc.stop() == 0, proc.text()[-3000:]


def test_the_cli_trains_offline_and_its_mistakes_are_one_line(dataset: tuple[Path, str], tmp_path: Path) -> None:
    data, ds_id = dataset
    cfg = _config(tmp_path, data)
    done = _cli("train", "--config", str(cfg), "--dataset", ds_id, "--horizon", "30s", "--kind",
                "hist_gradient_boosting", "--params", '{"max_iter": 20}', module="model_service.cli")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    meta = json.loads((tmp_path / "ms" / "models" / out["model_id"] / "metadata.json").read_text())
    assert meta["kind"] == out["kind"] == "hist_gradient_boosting" and meta["horizon"] == "30s"
    assert meta["params"] == {"max_iter": 20} and meta["split"]["gap_ns"] == 30 * NS

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(yaml.safe_dump({"subscribe": {"endpoints": ["tcp://127.0.0.1:5560", "nowhere"]}}))
    for args, code, words in ((["train", "--config", str(cfg), "--dataset", "0" * 16], 2, "no dataset"),
                              (["train", "--config", str(cfg), "--dataset", ds_id, "--params", "{"], 2, "--params"),
                              (["serve", "--config", str(bad_yaml)], 2, "subscribe.endpoints[1]"),
                              (["serve", "--config", str(tmp_path / "missing.yaml")], 2, "missing.yaml"),
                              (["list", "--config", str(cfg)], 0, "")):
        r = _cli(*args, module="model_service.cli")
        assert r.returncode == code and "Traceback" not in r.stderr, (args, r.stderr)
        if code:
            err = r.stderr.strip().splitlines()
            assert len(err) == 1 and words in err[0], (args, err)
    assert json.loads(_cli("list", "--config", str(cfg), module="model_service.cli").stdout)[0]["model_id"] == \
        out["model_id"]


@pytest.mark.timeout(60)
def test_a_publish_endpoint_in_use_is_one_line_and_exit_1(dataset: tuple[Path, str], tmp_path: Path) -> None:
    ctx = zmq.Context()
    taken = ctx.socket(zmq.PUB)
    taken.bind(f"ipc://{tmp_path}/pred")
    port = h.free_port()
    blocker = ctx.socket(zmq.PUB)
    blocker.bind(f"tcp://127.0.0.1:{port}")
    try:
        doc = h.load(_config(tmp_path, dataset[0]))
        doc["publish"]["endpoint"] = f"tcp://127.0.0.1:{port}"
        (tmp_path / "ms.yaml").write_text(yaml.safe_dump(doc))
        t0 = time.monotonic()
        r = _cli("serve", "--config", str(tmp_path / "ms.yaml"), module="model_service.cli")
        err = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
        assert r.returncode == 1 and len(err) == 1 and f"tcp://127.0.0.1:{port}" in err[0], r.stderr
        assert "model.predictions" in err[0] and time.monotonic() - t0 < 30
    finally:
        taken.close(0), blocker.close(0), ctx.term()
