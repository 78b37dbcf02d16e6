"""End to end: the REST API of a running shard (simulator → shard, HTTP on a free loopback port).

Registry reload good (body and configured file) and bad, bearer auth on POST, a symbol owned by
another shard of the cluster file (404 naming it), /health, /features/schema and /openapi.json.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from engine.record import Kind
from tests.api.fakes import OpenApiChecker
from tests.e2e import harness as h
from tools.registry_file import default_registry_text

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TOKEN = "e2e-secret-token"
BAD_REGISTRY = "version: 1\nfeatures:\n  - {name: mid_price, function: no_such_function_e2e}\n"


def _cluster(tmp: Path, api_port: int) -> Path:
    """A cluster file: this shard owns SYMBOLS, shard `alts` owns XRPUSDT and DOGEUSDT."""
    doc = {"cluster": {"name": "e2e"},
           "defaults": {"gateway": {"endpoint": "tcp://127.0.0.1:5556"}},
           "shards": [{"name": "shard", "symbols": SYMBOLS, "publish_endpoint": "tcp://127.0.0.1:25560",
                       "api": {"host": "127.0.0.1", "port": api_port}},
                      {"name": "alts", "symbols": ["XRPUSDT", "DOGEUSDT"], "publish_endpoint": "tcp://127.0.0.1:25561",
                       "api": {"host": "127.0.0.2", "port": 18081}}]}
    path = tmp / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _without(text: str, feature: str) -> str:
    """The registry text without the line defining `feature`."""
    lines = [ln for ln in text.splitlines(keepends=True) if f"name: {feature}," not in ln]
    assert len(lines) == len(text.splitlines()) - 1
    return "".join(lines)


class Checked:
    """The API client of this test: every JSON answer is validated against the served /openapi.json."""

    def __init__(self, port: int) -> None:
        self.port = port
        status, doc = h.get_json(port, "/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.")
        self.checker = OpenApiChecker(doc)

    def get(self, path_qs: str) -> tuple[int, dict]:
        status, body = h.get_json(self.port, path_qs)
        self.checker.validate("GET", path_qs.split("?")[0], status, "application/json", body)
        return status, body

    def reload(self, text: str | None, token: str | None) -> tuple[int, dict]:
        status, body = h.post_registry(self.port, text, token)
        self.checker.validate("POST", "/feature-registry/reload", status, "application/json", body)
        return status, body


def _latest_hash_from(port: int, effective_ns: int, symbol: str) -> str:
    """The registry hash of the first /features/latest body with ts at or after `effective_ns`."""
    def newer() -> dict | None:
        status, body = h.get_json(port, f"/features/latest?symbol={symbol}")
        return body if status == 200 and body["ts_ns"] >= effective_ns else None
    return h.wait_for(newer, 5, f"a {symbol} vector from the reload's tick on")["registry_hash"]


@pytest.mark.timeout(90)
def test_registry_reload_auth_owner_404_health_and_openapi(tmp_path: Path) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(default_registry_text())
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=200)
    port = h.free_port()
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS, api={"port": port, "token": TOKEN},
                               registry=str(registry_file), cluster=str(_cluster(tmp_path, port)))
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    try:
        h.wait_for(lambda: h.get(port, "/features/latest?symbol=BTCUSDT")[0] == 200, 10, "a first vector")
        api = Checked(port)
        _, schema0 = api.get("/features/schema")
        old_hash = schema0["registry_hash"]

        # Auth: POST without a token or with a wrong one is 401 and changes nothing.
        for token in (None, "wrong-token"):
            status, body = api.reload(_without(default_registry_text(), "time_of_day"), token)
            assert status == 401 and "error" in body, (token, status, body)

        # Bad registry: 400 with the validation message; the old registry stays in force.
        status, body = api.reload(BAD_REGISTRY, TOKEN)
        assert status == 400 and "no_such_function_e2e" in body["error"], body
        time.sleep(1.2)
        assert h.get_json(port, "/features/schema")[1]["registry_hash"] == old_hash
        assert _latest_hash_from(port, time.time_ns() - h.NS, "BTCUSDT") == old_hash

        # Good registry in the body: 200, the new hash, the tick it applies from; vectors then carry it.
        smaller = _without(default_registry_text(), "time_of_day")
        status, body = api.reload(smaller, TOKEN)
        assert status == 200, body
        new_hash, effective = body["registry_hash"], body["effective_ns"]
        assert new_hash != old_hash and "time_of_day" not in body["names"]
        assert effective % h.NS == 0 and abs(effective - time.time_ns()) < 2 * h.NS, effective
        for sym in SYMBOLS:
            assert _latest_hash_from(port, effective, sym) == new_hash
        status, latest = api.get("/features/latest?symbol=ETHUSDT")
        assert status == 200 and "time_of_day" not in latest["features"] and len(latest["features"]) == len(body["names"])

        # No body: re-read the configured file (now with one feature more).
        registry_file.write_text(default_registry_text() + "  - {name: vol_5s_e2e, function: volume, window: 5s}\n")
        status, body = api.reload(None, TOKEN)
        assert status == 200 and body["names"][-1] == "vol_5s_e2e", body
        file_hash = body["registry_hash"]
        assert _latest_hash_from(port, body["effective_ns"], "BTCUSDT") == file_hash

        # Every hash used stays answerable.
        _, schema = api.get("/features/schema")
        assert schema["registry_hash"] == file_hash and set(schema["known_hashes"]) >= {old_hash, new_hash, file_hash}
        status, old = api.get(f"/features/schema?registry_hash={old_hash}")
        assert status == 200 and old["names"] == schema0["names"]

        # Symbols: one owned by another shard (404 naming it), one nobody owns, one missing parameter.
        status, body = api.get("/features/latest?symbol=XRPUSDT")
        assert status == 404 and "alts" in body["error"] and body["owner"] == {"shard": "alts", "url": "http://127.0.0.2:18081"}
        status, body = api.get("/features/latest?symbol=ADAUSDT")
        assert status == 404 and "no shard in the cluster config owns it" in body["error"], body
        assert api.get("/features/latest")[0] == 400

        # /health and /openapi.json respond.
        status, health = api.get("/health")
        assert status == 200 and health["shard"] == "shard" and set(health["books"]) == set(SYMBOLS)
        assert health["gateway"]["up"] is True and health["journal"]["next_seq"] > 1
        doc = api.checker.doc
        assert {"/features/latest", "/features/schema", "/feature-registry/reload", "/health", "/metrics"} <= set(doc["paths"])
        status, _ = api.get("/features/schema?registry_hash=" + "0" * 64)
        assert status == 404
        assert len(api.checker.checked) >= 9, api.checker.checked
        assert shard.alive()
    finally:
        sim.stop()
        code = shard.stop()
    assert code == 0, shard.text()[-3000:]

    # The journal holds exactly the two accepted reloads, in order; nothing for the refused ones.
    recs = h.journal_records(Path(h.load(shard_cfg)["data_dir"]) / "journal")
    changes = [r.payload["hash"] for r in recs if r.kind == Kind.REGISTRY_CHANGED]
    assert changes == [new_hash, file_hash], changes
