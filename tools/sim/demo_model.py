"""The demo's last step: model-service trains on the demo's dataset and scores the restarted shard's vectors.

The simulator and the shard start again on the same data directory (the shard resumes its journal
from its checkpoint, same registry), model-service starts beside them, and everything goes through
model-service's API as a user would: POST /model/train on the dataset id, GET /model/{id} until it
is trained, POST /model/activate, then a few seconds of model.predictions and one
GET /model/predict/latest.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from tools.sim.cmd_demo import Plan

#: The horizon the demo's model predicts (its dataset spans seconds; the split leaves a horizon-wide gap).
MODEL_HORIZON = "1s"
#: Validation and test shares of the dataset's ticks: a 16 s run still gives each part 4 ticks after its gap.
SPLIT = {"validation": 0.3, "test": 0.25}
#: Seconds of predictions shown.
SCORING_S = 5
TRAIN_TIMEOUT_S = 180.0


def model_config(plan: Plan, ports: list[int]) -> dict[str, Any]:
    """model-service's config: models under the demo's data dir, its datasets, the shard's stream."""
    return {"data_dir": str(plan.data), "datasets_dir": str(plan.data / "datasets"),
            "subscribe": {"endpoints": [plan.publish]},
            "publish": {"endpoint": f"tcp://127.0.0.1:{ports[0]}"},
            "api": {"host": "127.0.0.1", "port": ports[1]}}


def _call(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def score_live(plan: Plan, dataset_id: str, console: Console) -> bool:
    """Restart the stream, train and activate a model on `dataset_id`, show its live predictions."""
    from tools.sim.cmd_demo import Child, free_ports, say, stop_all, wait_ready

    ports = free_ports(2)
    cfg = model_config(plan, ports)
    api = f"http://127.0.0.1:{ports[1]}"
    say(console, f"\nmodel-service: training on dataset {dataset_id} (label_{MODEL_HORIZON}) and scoring the "
                 f"restarted shard's features.live ({api}, model.predictions on {cfg['publish']['endpoint']}) ...",
        style="bold")
    children = [Child.spawn("shard", plan.data, plan.shard), Child.spawn("gateway-sim", plan.data, plan.sim),
                Child.spawn("model-service", plan.data, cfg, program=[sys.executable, "-m", "model_service.cli", "serve"])]
    try:
        ok = wait_ready(plan.api, children) and wait_ready(api, children[2:] + children[:2])
        model_id = ok and _train(api, dataset_id, console)
        ok = bool(model_id) and _activate(api, model_id, console) and _show(plan, cfg, api, console)
    finally:
        ok = stop_all(children) and ok
    return bool(ok)


def _train(api: str, dataset_id: str, console: Console) -> str | None:
    from tools.sim.cmd_demo import say

    status, got = _call(f"{api}/model/train", {"dataset_id": dataset_id, "horizon": MODEL_HORIZON,
                                                "model": {"kind": "auto"}, "split": SPLIT})
    if status != 202:
        print(f"feature-service demo: POST /model/train answered {status}: {got.get('error')}", file=sys.stderr)
        return None
    model_id = got["model_id"]
    end = time.monotonic() + TRAIN_TIMEOUT_S
    while (state := _call(f"{api}/model/{model_id}")[1])["status"] not in ("done", "failed"):
        if time.monotonic() > end:
            print(f"feature-service demo: model {model_id} not trained within {TRAIN_TIMEOUT_S:g} s", file=sys.stderr)
            return None
        time.sleep(0.3)
    if state["status"] == "failed":
        print(f"feature-service demo: training failed: {state.get('error')}", file=sys.stderr)
        return None
    m = state["metadata"]
    val = {k: round(v["validation_log_loss"], 3) for k, v in m["candidates"].items()}
    test = m["metrics"]["test"]
    say(console, f"model {model_id}: {m['kind']} (validation log loss {val}); rows train {m['rows']['train']} · "
                 f"validation {m['rows']['validation']} · test {m['rows']['test']}, {m['split']['gap_ns'] // 10**9} s "
                 f"gaps; test accuracy {test['accuracy']:.2f} vs {test['baseline']['accuracy']:.2f} always "
                 f"predicting {test['baseline']['predict']}")
    return model_id


def _activate(api: str, model_id: str, console: Console) -> bool:
    from tools.sim.cmd_demo import say

    status, got = _call(f"{api}/model/activate", {"model_id": model_id})
    if status != 200:
        print(f"feature-service demo: POST /model/activate answered {status}: {got.get('error')}", file=sys.stderr)
        return False
    say(console, f"activated {model_id} (registry {got['registry_hash'][:12]}): scoring live vectors")
    return True


def _show(plan: Plan, cfg: dict[str, Any], api: str, console: Console) -> bool:
    """Print a line of predictions a second for SCORING_S s, then GET /model/predict/latest."""
    import zmq

    from model_service import wire
    from tools.sim.cmd_demo import say

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(cfg["publish"]["endpoint"])
    sub.subscribe(wire.TOPIC_PREFIX)
    seen: dict[str, dict[str, Any]] = {}
    try:
        for second in range(1, SCORING_S + 1):
            end, latencies = time.monotonic() + 1.0, []
            while (left := end - time.monotonic()) > 0:
                if sub.poll(int(left * 1000) + 1):
                    p = wire.decode(sub.recv_multipart())
                    seen[p["symbol"]] = p
                    latencies.append(p["latency_ns"] / 1e3)
            shown = " · ".join(f"{s} ↓{p['probabilities']['-1']:.2f} ={p['probabilities']['0']:.2f} "
                               f"↑{p['probabilities']['1']:.2f}" for s, p in sorted(seen.items()))
            lat = f"latency {sorted(latencies)[len(latencies) // 2]:.0f} µs" if latencies else "no prediction"
            say(console, f"  t+{second}s {shown or '(waiting)'} · {len(latencies)} predictions, {lat}")
    finally:
        ctx.destroy(linger=0)
    missing = [s for s in plan.symbols if s not in seen]
    if missing:
        print(f"feature-service demo: no prediction arrived for {', '.join(missing)} (see model-service.log)",
              file=sys.stderr)
        return False
    status, latest = _call(f"{api}/model/predict/latest?symbol={plan.symbols[0]}")
    say(console, f"GET {api}/model/predict/latest?symbol={plan.symbols[0]}", style="bold")
    print(json.dumps(latest, indent=2), flush=True)
    return status == 200
