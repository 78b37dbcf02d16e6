"""`feature-service demo`: synthetic gateway -> shard -> journal for ~10 s, then the journal's stats."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tools.shard.config import ShardConfig
from tools.sim.gateway.config import SimConfig
from tools.typedconfig import ConfigError, build

#: Seconds a child may take to stop cleanly after SIGINT before it is killed.
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class DemoSection:
    """Demo run settings (YAML key ``demo``)."""

    duration_s: float = 10.0
    out_dir: str = "demo-out"


@dataclass(frozen=True)
class DemoConfig:
    """The whole demo YAML: run settings, the simulator's config and the shard's config."""

    demo: DemoSection = field(default_factory=DemoSection)
    gateway_sim: SimConfig = field(default_factory=SimConfig)
    shard_config: ShardConfig = field(default_factory=ShardConfig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the demo options (all optional: the embedded tools/sim/demo.yaml is the default)."""
    p.add_argument("--config", metavar="FILE", help="demo YAML (default: the embedded tools/sim/demo.yaml)")
    p.add_argument("--duration", type=float, metavar="S", help="override demo.duration_s")


def run(args: argparse.Namespace) -> int:
    """Start the simulator and a shard as subprocesses, stop both cleanly, print journal stats."""
    import yaml

    text = Path(args.config).read_text() if args.config else resources.files("tools.sim").joinpath("demo.yaml").read_text()
    raw = yaml.safe_load(text) or {}
    demo, sim_raw, shard_raw = _validate(raw)
    duration = args.duration if args.duration is not None else demo.duration_s
    out = Path.cwd() / demo.out_dir
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    journal = out / "journal"
    shard_raw.setdefault("journal", {})["dir"] = str(journal)
    (out / "gateway-sim.yaml").write_text(yaml.safe_dump(sim_raw, sort_keys=False))
    (out / "shard.yaml").write_text(yaml.safe_dump(shard_raw, sort_keys=False))
    print(f"demo: output in {out} (logs: gateway-sim.log, shard.log)", flush=True)
    shard = _spawn("shard", out / "shard.yaml", out / "shard.log")
    sim = _spawn("gateway-sim", out / "gateway-sim.yaml", out / "gateway-sim.log")
    try:
        print(f"demo: gateway simulator pid={sim.pid}, shard pid={shard.pid}; running {duration:g} s", flush=True)
        _sleep_while_alive(duration, [sim, shard])
    finally:
        codes = [_stop(sim), _stop(shard)]
    print(f"demo: stopped (gateway-sim exit {codes[0]}, shard exit {codes[1]}); journal stats:", flush=True)
    stats = subprocess.run([sys.executable, "-m", "tools.cli", "journal", "stats", "--journal", str(journal)])
    features = out / "features.parquet"
    print(f"demo: replaying the journal through the engine into {features}", flush=True)
    replay = subprocess.run([sys.executable, "-m", "tools.cli", "replay", "--journal", str(journal),
                             "--out", str(features)], stdout=subprocess.DEVNULL)
    if replay.returncode == 0:
        _show_features(features)
    return 0 if codes == [0, 0] and stats.returncode == 0 and replay.returncode == 0 else 1


#: Columns the demo prints from the last vector of each symbol.
SHOWN = ("book_valid", "mid_price", "spread_rel", "return_1s", "vwap_3s", "vol_3s", "signed_volume_1m",
         "trade_count_3s", "depth_imbalance_top5", "orderbook_churn_rate_1m", "funding_rate", "time_to_funding")


def _show_features(path: Path) -> None:
    """Print the feature file's size and the last row of each symbol (selected columns)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = table.to_pylist()
    print(f"demo: {table.num_rows} feature rows x {table.num_columns} columns; "
          f"registry {table.schema.metadata[b'feature_registry_hash'].decode()[:12]}; last vector per symbol:")
    last = {r["symbol"]: r for r in rows}
    print(f"  {'feature':<26}" + "".join(f"{s:>16}" for s in last))
    for col in SHOWN:
        print(f"  {col:<26}" + "".join(f"{last[s][col]:>16.6g}" for s in last))


def _validate(raw: Any) -> tuple[DemoSection, dict[str, Any], dict[str, Any]]:
    """Check every section with its typed config (errors name the dotted key) and return them."""
    cfg = build(DemoConfig, raw)
    if Path(cfg.demo.out_dir).is_absolute() or ".." in Path(cfg.demo.out_dir).parts:
        raise ConfigError("demo.out_dir: must be a relative path below the current directory")
    return cfg.demo, dict(raw.get("gateway_sim") or {}), dict(raw.get("shard_config") or {})


def _spawn(command: str, config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``feature-service COMMAND --config CONFIG`` with its output in `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "tools.cli", command, "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT)


def _sleep_while_alive(seconds: float, procs: list[subprocess.Popen[bytes]]) -> None:
    """Sleep up to `seconds`, returning early if a child exits."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if any(p.poll() is not None for p in procs):
            print("demo: a child exited early; see its log", file=sys.stderr)
            return
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT a child and wait for its clean exit (kill it after STOP_TIMEOUT_S)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
