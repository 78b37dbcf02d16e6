"""`feature-service demo`: simulator → shard → live table → GET /features/latest → replay dataset →
training dataset → model-service trains on it and scores live vectors.

The gateway simulator and one shard run as subprocesses on free 127.0.0.1 ports; a live table
(`tools/sim/demo_table.py`) shows features.live and the shard's /health and /metrics once a second;
then one `GET /features/latest` is printed, both processes are stopped cleanly (SIGINT), the
journal is replayed into a Parquet dataset under ``<data>/features/``, compacted, and built into a
labelled training dataset; finally the two restart beside model-service, which trains on that
dataset through its API and scores the live vectors (`tools/sim/demo_model.py`).

Everything lives in one data directory (default ``./demo-data``). The demo marks a directory it
creates with `MARKER` and later clears only a directory carrying it; a non-empty directory without
the marker, the current directory or a parent of it, ``/``, the home directory and a file are
refused (exit 2) and left exactly as they were.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.shard.config import ShardConfig
from tools.sim.demo_model import score_live
from tools.sim.gateway.config import SimConfig
from tools.typedconfig import ConfigError, build, load_yaml_file

if TYPE_CHECKING:
    from rich.console import Console

    from tools.sim.demo_table import Watch

#: The file marking a directory as the demo's own: only a directory holding it is ever cleared.
MARKER = ".feature-service-demo"
MARKER_TEXT = ("Made by `feature-service demo`: the next demo run with this directory as its data dir\n"
               "deletes everything in it. Remove this file to keep the directory from the demo.\n")
#: Seconds a child may take to stop after SIGINT before it is killed.
STOP_TIMEOUT_S = 15.0
#: Seconds the shard's API may take to answer at start (a first run compiles numba kernels).
READY_TIMEOUT_S = 120.0
#: Lines of a child's log shown when it fails.
LOG_TAIL_LINES = 12
#: Keys the demo sets itself (free ports picked at start, paths under the data dir).
OWNED_KEYS = {"gateway_sim": ("endpoint", "control_endpoint"),
              "shard_config": ("data_dir", "journal.dir", "gateway.endpoint", "gateway.control_endpoint",
                               "publish.endpoint", "api.host", "api.port")}


class DemoRefusal(Exception):
    """The data directory may not be used (or cannot be made); the message names it."""


@dataclass(frozen=True)
class DemoSection:
    """Demo run settings (YAML key ``demo``)."""

    #: Seconds of live table (3..86400).
    duration_s: int = 20
    #: The demo's data directory, relative to the current directory unless absolute.
    data_dir: str = "demo-data"

    def __post_init__(self) -> None:
        if not 3 <= self.duration_s <= 86_400:
            raise ValueError(f"duration_s: {self.duration_s} is not within [3, 86400]")
        if not self.data_dir:
            raise ValueError("data_dir: must not be empty")


@dataclass(frozen=True)
class Plan:
    """One demo run: how long, where, which symbols, the children's configs and endpoints."""

    duration: int
    data: Path
    symbols: tuple[str, ...]
    sim: dict[str, Any]
    shard: dict[str, Any]
    api: str
    publish: str


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the demo options (all optional: the embedded tools/sim/demo.yaml is the default)."""
    p.add_argument("--config", metavar="FILE",
                   help="demo YAML whose keys override the embedded tools/sim/demo.yaml (demo, gateway_sim, "
                        "shard_config)")
    p.add_argument("--duration", type=int, metavar="S", help="seconds of live table (default: demo.duration_s, 20)")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"data directory (default: demo.data_dir, ./demo-data); made with a {MARKER} "
                        "marker and cleared on the next run; a non-empty directory without it is refused")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 only when every step worked, 2 for a config or data-dir mistake, else 1."""
    from rich.console import Console

    plan = make_plan(load_raw(args.config), args.duration, args.data_dir)
    try:
        lock = prepare_data_dir(check_data_dir(plan.data, args.data_dir or str(plan.data)))
    except DemoRefusal as e:
        print(f"feature-service demo: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    children = [Child.spawn("shard", plan.data, plan.shard), Child.spawn("gateway-sim", plan.data, plan.sim)]
    try:
        return demo(plan, children, Console(highlight=False))
    finally:
        stop_all(children)
        os.close(lock)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: leave through the `finally` that stops the children."""
    raise SystemExit(128 + signum)


# --- config ----------------------------------------------------------------------------------
def load_raw(path: str | None) -> dict[str, Any]:
    """The embedded tools/sim/demo.yaml, with the keys of FILE (when given) laid over it."""
    import yaml

    raw = yaml.safe_load(resources.files("tools.sim").joinpath("demo.yaml").read_text())
    if path:
        given = load_yaml_file(path)
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(given).__name__}")
        raw = overlay(raw, given)
    return raw


def overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`base` with `top` laid over it: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A deep copy of mapping `key` of `raw` ({} when absent)."""
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    return copy.deepcopy(value)


def _has(d: dict[str, Any], dotted: str) -> bool:
    """Whether nested mapping `d` sets the dotted key."""
    *parents, last = dotted.split(".")
    for p in parents:
        d = d.get(p) if isinstance(d.get(p), dict) else {}
    return last in d


def _nested(d: dict[str, Any], key: str) -> dict[str, Any]:
    """Mapping `key` of `d`, created when absent."""
    value = d.setdefault(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"shard_config.{key}: expected a mapping, got {type(value).__name__}")
    return value


def make_plan(raw: dict[str, Any], duration: int | None, data_dir: str | None) -> Plan:
    """Validate the demo YAML (errors name the dotted key), pick free ports and fill the children's configs."""
    unknown = sorted(set(raw) - {"demo", "gateway_sim", "shard_config"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (known keys here: demo, gateway_sim, shard_config)")
    sections = {k: _section(raw, k) for k in ("demo", "gateway_sim", "shard_config")}
    for key, owned in OWNED_KEYS.items():
        for dotted in owned:
            if _has(sections[key], dotted):
                raise ConfigError(f"{key}.{dotted}: set by the demo itself (free ports and the data dir "
                                  "are chosen at start); remove it")
    if duration is not None:
        if not 3 <= duration <= 86_400:
            raise ConfigError(f"--duration: {duration} is not within [3, 86400]")
        sections["demo"]["duration_s"] = duration
    if data_dir is not None:
        sections["demo"]["data_dir"] = data_dir
    demo_cfg = build(DemoSection, sections["demo"], "demo")
    data = Path(demo_cfg.data_dir).expanduser().absolute()
    gw, ctl, pub, api = (f"tcp://127.0.0.1:{port}" for port in free_ports(4))
    sim = sections["gateway_sim"]
    sim.update(endpoint=gw, control_endpoint=ctl)
    sim_cfg = build(SimConfig, sim, "gateway_sim")
    shard = sections["shard_config"]
    shard["data_dir"] = str(data)
    _nested(shard, "gateway").update(endpoint=gw, control_endpoint=ctl)
    _nested(shard, "publish")["endpoint"] = pub
    _nested(shard, "api").update(host="127.0.0.1", port=int(api.rsplit(":", 1)[1]))
    symbols = _shard_symbols(_nested(shard, "shard"), sim_cfg)
    build(ShardConfig, shard, "shard_config")
    return Plan(demo_cfg.duration_s, data, symbols, sim, shard, api.replace("tcp://", "http://"), pub)


def _shard_symbols(section: dict[str, Any], sim: SimConfig) -> tuple[str, ...]:
    """The shard's symbols: as configured (each one simulated), or every simulated symbol."""
    if "symbols" not in section:
        if sim.source != "synthetic":
            raise ConfigError("shard_config.shard.symbols: required when gateway_sim.source is not synthetic")
        section["symbols"] = list(sim.synthetic.all_symbols())
    symbols = section["symbols"]
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise ConfigError("shard_config.shard.symbols: expected a list of symbols")
    missing = [s for s in symbols if s not in sim.synthetic.all_symbols()]
    if sim.source == "synthetic" and missing:
        raise ConfigError(f"shard_config.shard.symbols: {missing[0]} is not simulated "
                          "(gateway_sim.synthetic.symbols)")
    return tuple(symbols)


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports on 127.0.0.1 that are free right now (bound to port 0, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- the data directory ----------------------------------------------------------------------
def check_data_dir(path: Path, given: str) -> Path:
    """Return the real data dir, or raise DemoRefusal (naming it) when the demo must not use it."""
    real = path.resolve()
    cwd = Path.cwd().resolve()
    why = None
    if real == Path(real.anchor):
        why = "it is the root directory"
    elif real == Path.home().resolve():
        why = "it is the home directory"
    elif real == cwd or real in cwd.parents:
        why = "it is the current directory or one of its parents"
    elif real.exists() and not real.is_dir():
        why = "it is not a directory"
    elif real.is_dir() and not _marked(real) and _non_empty(real):
        why = f"it is not empty and was not made by the demo (no {MARKER} marker)"
    if why is not None:
        raise DemoRefusal(f"refusing data dir {given!r} ({real}): {why}; give --data-dir a new or empty directory")
    return real


def _marked(d: Path) -> bool:
    """Whether `d` holds the demo's marker (a regular file, not a symlink)."""
    marker = d / MARKER
    return marker.is_file() and not marker.is_symlink()


def _non_empty(d: Path) -> bool:
    try:
        return any(d.iterdir())
    except OSError as e:
        raise DemoRefusal(f"cannot read data dir {d}: {e.strerror}") from None


def prepare_data_dir(real: Path) -> int:
    """Create the data dir (or clear it when it holds the marker), write the marker and lock it.

    Returns the marker's file descriptor: its exclusive lock, held until the demo exits, makes a
    second demo on the same directory refuse instead of clearing it under the first.
    """
    import fcntl

    marker = real / MARKER
    try:
        real.mkdir(parents=True, exist_ok=True)
        fd = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DemoRefusal(f"refusing data dir {real}: another demo run is using it") from None
        for child in real.iterdir():
            if child.name == MARKER:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        os.ftruncate(fd, 0)
        os.write(fd, MARKER_TEXT.encode())
        return fd
    except OSError as e:
        raise DemoRefusal(f"cannot prepare data dir {real}: {e.strerror or e}") from None


def shown_path(p: Path) -> str:
    """`p` relative to the current directory when below it, else absolute."""
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# --- the children ----------------------------------------------------------------------------
@dataclass
class Child:
    """A `feature-service COMMAND --config FILE` subprocess with its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    #: Whether its failure was already reported (each failure is reported once).
    reported: bool = False

    @classmethod
    def spawn(cls, name: str, data: Path, config: dict[str, Any], program: list[str] | None = None) -> Child:
        """Write `config` to ``<data>/<name>.yaml`` and start the command (``feature-service NAME`` unless
        `program` is given) in a session of its own (Ctrl-C reaches only the demo, which then stops the
        children itself); its output is appended to ``<data>/<name>.log``."""
        import yaml

        path, log = data / f"{name}.yaml", data / f"{name}.log"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = program or [sys.executable, "-m", "tools.cli", name]
        with log.open("ab") as out:
            proc = subprocess.Popen([*argv, "--config", str(path)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return cls(name, proc, log)

    def tail(self) -> str:
        """The last lines of the log, indented."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError as e:
            lines = [f"(cannot read {self.log}: {e.strerror})"]
        return "\n".join(f"    {line}" for line in lines) or "    (empty)"

    def report(self, what: str) -> None:
        """Print on stderr that this child `what`, with the last lines of its log."""
        self.reported = True
        print(f"feature-service demo: the {self.name} {what}; last lines of {shown_path(self.log)}:\n"
              f"{self.tail()}", file=sys.stderr)


def died(children: list[Child]) -> Child | None:
    """The first child that has exited, if any."""
    return next((c for c in children if c.proc.poll() is not None), None)


def stop_all(children: list[Child]) -> bool:
    """SIGINT every running child, wait, kill after STOP_TIMEOUT_S; True when all exited 0 by themselves."""
    for c in children:
        if c.proc.poll() is None:
            c.proc.send_signal(signal.SIGINT)
    ok = True
    for c in children:
        try:
            code = c.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
            c.report(f"did not stop within {STOP_TIMEOUT_S:g} s of SIGINT and was killed")
            ok = False
            continue
        if code != 0 and not c.reported:
            c.report(f"exited with status {code}")
            ok = False
    return ok


def wait_ready(api: str, children: list[Child]) -> bool:
    """Wait until the shard's /health answers; False (reported) when a child dies or time runs out."""
    from tools.sim.demo_table import http_json

    end = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < end:
        dead = died(children)
        if dead is not None:
            dead.report(f"exited early with status {dead.proc.returncode}")
            return False
        try:
            http_json(f"{api}/health")
            return True
        except (OSError, ValueError):
            time.sleep(0.2)
    children[0].report(f"API at {api} did not answer within {READY_TIMEOUT_S:g} s")
    return False


# --- the run ---------------------------------------------------------------------------------
def demo(plan: Plan, children: list[Child], console: Console) -> int:
    """Wait for the API, show the live table, print the latest vector, stop, build the dataset."""
    t0 = time.monotonic()
    _intro(plan, console)
    if not wait_ready(plan.api, children):
        return 1
    say(console, f"shard API ready in {time.monotonic() - t0:.1f} s\n")
    w = live_view(plan, children, console)
    dead = died(children)
    if dead is not None:
        dead.report(f"exited early with status {dead.proc.returncode}")
        return 1
    ok = _check_stream(w, plan.symbols)
    ok = show_latest(plan, console) and ok
    say(console, "\nstopping the simulator and the shard (SIGINT) ...")
    stopped = stop_all(children)
    if stopped:
        say(console, "both stopped cleanly (exit 0)")
    ok = stopped and ok
    ok = build_dataset(plan, w, console) and ok
    built = training_dataset(plan, console) if ok else None
    ok = built is not None and score_live(plan, built, console)
    _outro(plan, console, ok, time.monotonic() - t0)
    return 0 if ok else 1


def say(console: Console, text: str, style: str | None = None) -> None:
    """Print one message (styled on a terminal, plain in a pipe; never wrapped, never markup)."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _intro(plan: Plan, console: Console) -> None:
    gap = plan.sim.get("faults", {}).get("drop_delta", {}).get("every", 0)
    faults = f"; a book gap injected every {gap} deltas" if gap else ""
    say(console, f"feature-service demo: gateway simulator ({', '.join(plan.symbols)}{faults}) → shard → "
                 f"features.live ({plan.publish}) + REST API ({plan.api})", style="bold")
    say(console, f"data in {shown_path(plan.data)}/ · logs: shard.log, gateway-sim.log · "
                 f"{plan.duration} s of live table")
    say(console, "starting both (a first run compiles the numba kernels, which takes a while) ...")


def live_view(plan: Plan, children: list[Child], console: Console) -> Watch:
    """Show the live table (a terminal) or one line per second (a pipe) for `plan.duration` s."""
    import zmq
    from rich.live import Live

    from api.wire import TOPIC_PREFIX
    from tools.sim.demo_table import Watch, plain_line, table, watch

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(plan.publish)
    sub.subscribe(TOPIC_PREFIX)
    w = Watch(plan.api, plan.symbols)
    alive = lambda: died(children) is None  # noqa: E731
    try:
        if console.is_terminal:
            with Live(table(w, plan.duration), console=console, auto_refresh=False,
                      vertical_overflow="visible") as live:
                watch(w, sub, plan.duration, lambda w: live.update(table(w, plan.duration), refresh=True), alive)
        else:
            watch(w, sub, plan.duration, lambda w: print(plain_line(w), flush=True), alive)
    except KeyboardInterrupt:
        say(console, "Ctrl-C: live view ended early")
    finally:
        ctx.destroy(linger=0)
    return w


def _check_stream(w: Watch, symbols: tuple[str, ...]) -> bool:
    """True when features.live delivered a vector for every symbol (reported otherwise)."""
    missing = [s for s in symbols if s not in w.latest]
    if missing:
        print(f"feature-service demo: no features.live vector arrived for {', '.join(missing)} in "
              f"{w.t} s (see shard.log)", file=sys.stderr)
    return not missing


def show_latest(plan: Plan, console: Console) -> bool:
    """Print one GET /features/latest answer as pretty JSON; False when it fails."""
    from tools.sim.demo_table import http_json

    url = f"{plan.api}/features/latest?symbol={plan.symbols[0]}"
    say(console, f"\nGET {url}", style="bold")
    try:
        body = http_json(url)
    except urllib.error.HTTPError as e:
        print(f"feature-service demo: GET {url} answered {e.code}: {e.read().decode(errors='replace')}",
              file=sys.stderr)
        return False
    except (OSError, ValueError) as e:
        print(f"feature-service demo: GET {url} failed: {e}", file=sys.stderr)
        return False
    if console.is_terminal:
        console.print_json(data=body)
    else:
        print(json.dumps(body, indent=2), flush=True)
    return True


def build_dataset(plan: Plan, w: Watch, console: Console) -> bool:
    """Replay the journal into ``<data>/features/`` and summarise it; False when that fails."""
    from tools.sim.demo_table import dataset_summary

    out = plan.data / "features"
    say(console, f"\nreplaying the journal through the engine into {shown_path(out)}/ ...")
    r = subprocess.run([sys.executable, "-m", "tools.cli", "replay", "--journal", str(plan.data / "journal"),
                        "--out", str(out)], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"feature-service demo: replay exited with status {r.returncode}:\n{r.stderr.strip()}",
              file=sys.stderr)
        return False
    try:
        summary = json.loads(r.stdout)
    except ValueError:
        print(f"feature-service demo: replay printed no JSON summary: {r.stdout[:200]!r}", file=sys.stderr)
        return False
    return dataset_summary(summary, w, console)


def _cli(console: Console, what: str, *args: str) -> dict[str, Any] | None:
    """Run `feature-service ARGS` and return its JSON summary; None (reported) when it fails."""
    r = subprocess.run([sys.executable, "-m", "tools.cli", "-q", *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
    try:
        if r.returncode == 0:
            return json.loads(r.stdout)
    except ValueError:
        pass
    print(f"feature-service demo: {what} exited with status {r.returncode}:\n{r.stderr.strip()}", file=sys.stderr)
    return None


#: Target horizons of the demo's training dataset (its run lasts seconds, not minutes).
DEMO_HORIZONS = "1s,5s,10s"


def training_dataset(plan: Plan, console: Console) -> str | None:
    """Compact the journal into the store, build a labelled dataset of the whole run and its report;
    return its id (None, reported, when a step fails)."""
    from tools.dataset.source import ShardData

    cfg = str(plan.data / "shard.yaml")
    say(console, f"\ncompacting the journal into the raw store {shown_path(plan.data / 'store')}/ and building a "
                 f"training dataset (targets {DEMO_HORIZONS}) ...", style="bold")
    if _cli(console, "compact", "compact", "--config", cfg) is None:
        return None
    _, ts = ShardData.open(cfg).ticks()
    built = _cli(console, "dataset build", "dataset", "build", "--config", cfg, "--from", str(int(ts.min())),
                 "--to", str(int(ts.max()) + 1), "--horizons", DEMO_HORIZONS)
    if built is None:
        return None
    report = _cli(console, "dataset report", "dataset", "report", "--config", cfg, built["dataset_id"])
    if report is None:
        return None
    rows = ", ".join(f"{s} {n}" for s, n in built["rows"].items())
    say(console, f"training dataset {built['dataset_id']}: {built['rows_total']} rows ({rows}), registry "
                 f"{built['registry_hash'][:12]}")
    for h, b in built["label_balance"].items():
        say(console, f"  label_{h}: down {b['-1']} · flat {b['0']} · up {b['1']} · undefined {b['null']}")
    say(console, f"  path {shown_path(Path(built['path']))}/ (pandas: pd.read_parquet(path)) · manifest "
                 f"{shown_path(Path(built['path']) / '_manifest.json')}")
    say(console, f"  report {shown_path(Path(report['report']))}")
    return built["dataset_id"]


def _outro(plan: Plan, console: Console, ok: bool, seconds: float) -> None:
    data = shown_path(plan.data)
    if not ok:
        say(console, f"\ndemo FAILED after {seconds:.0f} s (see above and the logs in {data}/)", style="bold red")
        return
    say(console, f"\ndemo done in {seconds:.0f} s. Files in {data}/: journal/, checkpoints/, feature_log/, "
                 "features/, store/, datasets/, models/, shard.log, gateway-sim.log, model-service.log",
        style="bold green")
    say(console, f"next: feature-service journal stats --journal {data}/journal · the next demo run "
                 f"clears {data}/ (it carries the {MARKER} marker)")
