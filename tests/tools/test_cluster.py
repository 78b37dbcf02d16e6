"""Cluster config validation, owner_of, and `feature-service cluster plan` through the console script."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_bridge.config import GatewayConfig
from journal.config import JournalConfig
from tools.cluster.config import ClusterConfig, load_cluster_config
from tools.typedconfig import ConfigError, build

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "feature-service"

BASE: dict[str, Any] = {
    "cluster": {"name": "prod"},
    "defaults": {
        "gateway": {"endpoint": "tcp://10.0.0.5:5556", "control_endpoint": "tcp://10.0.0.5:5557",
                    "silence_ms": 4000, "topics": {"trades": "gw.trades"}},
        "journal": {"fsync": "always", "fsync_interval_ms": 7},
    },
    "shards": [
        {"name": "majors", "symbols": ["BTCUSDT", "ETHUSDT"], "publish_endpoint": "tcp://10.0.0.11:5560",
         "api": {"host": "10.0.0.11", "port": 8080}},
        {"name": "alts", "symbols": ["SOLUSDT", "DOGEUSDT", "XRPUSDT"],
         "publish_endpoint": "tcp://10.0.0.11:5561", "api": {"host": "10.0.0.11", "port": 8081},
         "data_dir": "/srv/fs/alts", "category": "spot", "gateway": {"topics": {"ticker": "gw.ticker"}}},
        {"name": "v6", "symbols": ["ADAUSDT"], "publish_endpoint": "tcp://[fd00::2]:5560",
         "api": {"host": "fd00::2", "port": 8080}},
    ],
}


def write(tmp_path: Path, data: Any, name: str = "cluster.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def edited(fn: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run `feature-service cluster ...` as a subprocess."""
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tools.cli"]
    return subprocess.run([*cmd, "cluster", *args], capture_output=True, text=True, cwd=cwd, timeout=60,
                          check=False)


# ---------------------------------------------------------------- the config

def test_a_good_cluster_loads_and_owner_of_answers_every_symbol(tmp_path: Path) -> None:
    cfg = load_cluster_config(write(tmp_path, BASE))
    assert isinstance(cfg, ClusterConfig) and cfg.cluster.name == "prod"
    expected = {"BTCUSDT": ("majors", "http://10.0.0.11:8080"), "ETHUSDT": ("majors", "http://10.0.0.11:8080"),
                "SOLUSDT": ("alts", "http://10.0.0.11:8081"), "DOGEUSDT": ("alts", "http://10.0.0.11:8081"),
                "XRPUSDT": ("alts", "http://10.0.0.11:8081"), "ADAUSDT": ("v6", "http://[fd00::2]:8080")}
    assert {sym: cfg.owner_of(sym) for sym in expected} == expected
    assert cfg.owner_of("LTCUSDT") is None and cfg.owner_of("btcusdt") is None
    assert cfg.shard("alts") is cfg.shards[1] and cfg.shard("nope") is None


def test_defaults_fill_in_and_a_shard_gateway_merges_key_by_key(tmp_path: Path) -> None:
    cfg = load_cluster_config(write(tmp_path, BASE))
    majors, alts = cfg.shards[0], cfg.shards[1]
    assert majors.data_path == "/var/lib/feature-service/majors" and alts.data_path == "/srv/fs/alts"
    assert cfg.category_of(majors) == "linear" and cfg.category_of(alts) == "spot"
    assert cfg.gateway_of(alts) == {"endpoint": "tcp://10.0.0.5:5556", "control_endpoint": "tcp://10.0.0.5:5557",
                                    "silence_ms": 4000, "topics": {"trades": "gw.trades", "ticker": "gw.ticker"}}
    assert cfg.gateway_of(majors) == BASE["defaults"]["gateway"]


def test_mismatch_tells_a_shard_whose_config_drifted_from_the_cluster_file(tmp_path: Path) -> None:
    cfg = load_cluster_config(write(tmp_path, BASE))
    assert cfg.mismatch("alts", ("XRPUSDT", "SOLUSDT", "DOGEUSDT")) is None  # order does not matter
    assert cfg.mismatch("alts", ["SOLUSDT", "LTCUSDT"]) == (
        "shard 'alts' symbols differ from cluster 'prod' (not served here: DOGEUSDT, XRPUSDT; "
        "not in the cluster file: LTCUSDT)")
    assert cfg.mismatch("gone", ["BTCUSDT"]) == "cluster 'prod' has no shard named 'gone'"


def _shard(i: int, **kv: Any) -> Callable[[dict[str, Any]], object]:
    return lambda d: d["shards"][i].update(kv)


@pytest.mark.parametrize("edit,key,parts", [
    (_shard(1, symbols=["SOLUSDT", "ETHUSDT"]), "shards[1].symbols[1]",
     ["ETHUSDT", "'alts'", "'majors'", "shards[0].symbols[1]"]),
    (_shard(2, symbols=["ADAUSDT", "BTCUSDT"]), "shards[2].symbols[1]", ["BTCUSDT", "'v6'", "'majors'"]),
    (_shard(1, name="majors"), "shards[1].name", ["'majors'", "shards[0]"]),
    (_shard(1, publish_endpoint="tcp://10.0.0.11:5560"), "shards[1].publish_endpoint",
     ["'alts'", "'majors'", "shards[0].publish_endpoint", "10.0.0.11:5560"]),
    (_shard(1, api={"host": "10.0.0.11", "port": 8080}), "shards[1].api.port",
     ["'alts'", "'majors'", "shards[0].api.port", "10.0.0.11:8080"]),
    (_shard(1, api={"host": "10.0.0.11", "port": 5560}), "shards[1].api.port",
     ["'alts'", "'majors'", "shards[0].publish_endpoint"]),
    (_shard(1, api={"host": "10.0.0.11", "port": 5561}), "shards[1].api.port",
     ["'alts'", "publish_endpoint too"]),
    (lambda d: (d["shards"][0].update(api={"host": "localhost", "port": 8080}),
                d["shards"][1].update(api={"host": "127.0.0.1", "port": 8080})),
     "shards[1].api.port", ["'alts'", "'majors'"]),
    (_shard(1, data_dir="/var/lib/feature-service/majors"), "shards[1].data_dir",
     ["'alts'", "'majors'", "shards[0].data_dir"]),
    (_shard(0, symbols=["BTCUSDT", "BTCUSDT"]), "shards[0].symbols[1]", ["BTCUSDT", "symbols[0]"]),
    (_shard(0, symbols=["BTCUSDT", "ethusdt"]), "shards[0].symbols[1]", ["'ethusdt'"]),
    (_shard(0, symbols=[]), "shards[0].symbols", ["at least one"]),
    (_shard(0, name="a/b"), "shards[0].name", ["'a/b'"]),
    (_shard(0, api={"host": "0.0.0.0", "port": 8080}), "shards[0].api.host", ["wildcard"]),
    (_shard(0, api={"host": "10.0.0.11", "port": 70000}), "shards[0].api.port", ["70000"]),
    (_shard(0, api={"host": "10.0.0.11"}), "shards[0].api.port", ["required"]),
    (_shard(0, publish_endpoint="tcp://*:5560"), "shards[0].publish_endpoint", ["wildcard"]),
    (_shard(0, publish_endpoint="tcp:/10.0.0.11:5560"), "shards[0].publish_endpoint", ["tcp://host:port"]),
    (_shard(0, publish_endpoint="ipc://relative.sock"), "shards[0].publish_endpoint", ["absolute"]),
    (_shard(0, data_dir="data/majors"), "shards[0].data_dir", ["absolute"]),
    (_shard(0, category="futures"), "shards[0].category", ["'futures'"]),
    (_shard(0, colour="red"), "shards[0].colour", ["unknown key"]),
    (_shard(1, gateway={"topics": {"tikker": "x"}}), "shards[1].gateway.topics.tikker", ["unknown key"]),
    (_shard(1, gateway={"silence_ms": "soon"}), "shards[1].gateway.silence_ms", ["expected int"]),
    (lambda d: d["defaults"]["gateway"].update(poll_ms="x"), "defaults.gateway.poll_ms", ["expected int"]),
    (lambda d: d["defaults"]["journal"].update(dir="/j"), "defaults.journal.dir", ["one journal per shard"]),
    (lambda d: d["defaults"]["journal"].update(fsync_interval_ms=0), "defaults.journal.fsync_interval_ms",
     ["> 0"]),
    (lambda d: d.update(shards=[]), "shards", ["at least one"]),
    (lambda d: d.pop("cluster"), "cluster", ["required"]),
    (lambda d: d["cluster"].update(name=""), "cluster.name", ["''"]),
])
def test_errors_name_the_dotted_key_and_both_parties(tmp_path: Path, edit: Callable[[dict[str, Any]], object],
                                                      key: str, parts: list[str]) -> None:
    path = write(tmp_path, edited(edit))
    with pytest.raises(ConfigError) as info:
        load_cluster_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: {key}: "), msg
    for part in parts:
        assert part in msg, (part, msg)


def test_one_port_on_different_hosts_and_one_data_dir_on_different_hosts_are_fine(tmp_path: Path) -> None:
    data = edited(lambda d: d["shards"][1].update(publish_endpoint="tcp://10.0.0.12:5560",
                                                  api={"host": "10.0.0.12", "port": 8080},
                                                  data_dir="/var/lib/feature-service/majors"))
    cfg = load_cluster_config(write(tmp_path, data))
    assert cfg.owner_of("SOLUSDT") == ("alts", "http://10.0.0.12:8080")


# ---------------------------------------------------------------- cluster plan

def shard_blocks(stdout: str) -> dict[str, str]:
    """The YAML text printed under each ``# ==> /etc/feature-service/NAME.yaml <==`` header."""
    blocks = {}
    for m in re.finditer(r"^# ==> /etc/feature-service/(\S+)\.yaml <==.*\n((?:.+\n)+)", stdout, re.M):
        blocks[m[1]] = m[2]
    return blocks


def expected_configs(cluster_path: str) -> dict[str, dict[str, Any]]:
    """The shard configs the plan must print, written out by hand from BASE."""
    gw = {"endpoint": "tcp://10.0.0.5:5556", "control_endpoint": "tcp://10.0.0.5:5557", "silence_ms": 4000}
    journal = {"fsync": "always", "fsync_interval_ms": 7}
    return {
        "majors": {"data_dir": "/var/lib/feature-service/majors",
                   "shard": {"name": "majors", "symbols": ["BTCUSDT", "ETHUSDT"], "category": "linear"},
                   "gateway": {**gw, "topics": {"trades": "gw.trades"}}, "journal": journal,
                   "publish": {"endpoint": "tcp://10.0.0.11:5560"}, "api": {"host": "10.0.0.11", "port": 8080},
                   "cluster": cluster_path},
        "alts": {"data_dir": "/srv/fs/alts",
                 "shard": {"name": "alts", "symbols": ["SOLUSDT", "DOGEUSDT", "XRPUSDT"], "category": "spot"},
                 "gateway": {**gw, "topics": {"trades": "gw.trades", "ticker": "gw.ticker"}}, "journal": journal,
                 "publish": {"endpoint": "tcp://10.0.0.11:5561"}, "api": {"host": "10.0.0.11", "port": 8081},
                 "cluster": cluster_path},
        "v6": {"data_dir": "/var/lib/feature-service/v6",
               "shard": {"name": "v6", "symbols": ["ADAUSDT"], "category": "linear"},
               "gateway": {**gw, "topics": {"trades": "gw.trades"}}, "journal": journal,
               "publish": {"endpoint": "tcp://[fd00::2]:5560"}, "api": {"host": "fd00::2", "port": 8080},
               "cluster": cluster_path},
    }


def test_plan_prints_each_shard_config_and_its_systemd_commands(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    done = cli("plan", "--config", str(path))
    assert done.returncode == 0, done.stderr
    blocks = shard_blocks(done.stdout)
    assert list(blocks) == ["majors", "alts", "v6"]
    assert {name: yaml.safe_load(text) for name, text in blocks.items()} == expected_configs(str(path.resolve()))
    lines = done.stdout.splitlines()
    for name in ("majors", "alts", "v6"):
        install = f"install -D -m 0644 {name}.yaml /etc/feature-service/{name}.yaml"
        start = f"systemctl enable --now feature-shard@{name}.service"
        assert lines.index(install) + 1 == lines.index(start)
    assert lines.index("# on 10.0.0.11: majors, alts") < lines.index("# on fd00::2: v6")
    assert "# note: data_dir is not /var/lib/feature-service/alts" in done.stdout  # needs ReadWritePaths
    hint = done.stdout[done.stdout.index("a subscriber wanting every symbol"):]
    assert "['tcp://10.0.0.11:5560', 'tcp://10.0.0.11:5561', 'tcp://[fd00::2]:5560']" in hint
    assert 'zmq.SUBSCRIBE, b"features.live."' in hint and "sub.connect(endpoint)" in hint


def test_plan_out_writes_the_files_it_prints_and_installs_from_them(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    out = tmp_path / "plan" / "etc"
    done = cli("plan", "--config", str(path), "--out", str(out), "--cluster-path",
               "/etc/feature-service/cluster.yaml")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alts.yaml", "majors.yaml", "v6.yaml"]
    blocks = shard_blocks(done.stdout)
    expected = expected_configs("/etc/feature-service/cluster.yaml")
    for name, text in blocks.items():
        assert (out / f"{name}.yaml").read_text() == text
        assert yaml.safe_load(text) == expected[name]
        assert f"install -D -m 0644 {out.resolve() / (name + '.yaml')} /etc/feature-service/{name}.yaml" \
            in done.stdout.splitlines()
    cluster_install = f"install -D -m 0644 {path.resolve()} /etc/feature-service/cluster.yaml"
    assert done.stdout.splitlines().count(cluster_install) == 2  # once per host
    assert "hidden from the unit" not in done.stdout


def test_plan_warns_when_the_cluster_file_sits_where_the_unit_cannot_see_it(tmp_path: Path) -> None:
    done = cli("plan", "--config", str(write(tmp_path, BASE)))
    assert done.returncode == 0, done.stderr
    hidden = str(tmp_path).startswith(("/tmp/", "/home/", "/root/"))
    assert ("hidden from the unit (ProtectHome/PrivateTmp)" in done.stdout) == hidden


def test_planned_configs_are_valid_for_the_subsystems_and_the_shard(tmp_path: Path) -> None:
    """Each emitted section builds with its subsystem's typed config (and the whole file with the
    shard's, once the shard config knows the cluster keys)."""
    done = cli("plan", "--config", str(write(tmp_path, BASE)), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    from tools.shard.config import ShardConfig, load_shard_config

    for f in sorted((tmp_path / "out").iterdir()):
        data = yaml.safe_load(f.read_text())
        gw = build(GatewayConfig, data["gateway"], "gateway")
        assert gw.topics.trades == "gw.trades" and gw.silence_ms == 4000
        assert build(JournalConfig, data["journal"], "journal").fsync == "always"
    if not {"cluster", "publish", "api", "data_dir"} <= set(ShardConfig.__dataclass_fields__):
        pytest.skip("tools/shard/config.py does not have the cluster, publish, api and data_dir keys yet")
    for f in sorted((tmp_path / "out").iterdir()):
        assert load_shard_config(f).shard.name == f.stem


@pytest.mark.parametrize("content,needle", [
    (yaml.safe_dump(edited(_shard(1, symbols=["ETHUSDT"]))), "shards[1].symbols[0]: ETHUSDT"),
    ("cluster: {name: x}\nshards: [\n", "not valid YAML"),
    (None, "cannot read config"),
])
def test_a_bad_cluster_file_exits_2_with_one_line(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "cluster.yaml"
    if content is not None:
        path.write_text(content)
    done = cli("plan", "--config", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_a_relative_cluster_path_is_a_usage_error(tmp_path: Path) -> None:
    done = cli("plan", "--config", str(write(tmp_path, BASE)), "--cluster-path", "cluster.yaml")
    assert done.returncode == 2 and "must be absolute" in done.stderr and done.stdout == ""


def test_the_example_cluster_in_systemd_plans_cleanly(tmp_path: Path) -> None:
    """systemd/cluster.example.yaml (quoted in the README) stays valid."""
    example = ROOT / "systemd" / "cluster.example.yaml"
    cfg = load_cluster_config(example)
    assert cfg.owner_of("LINKUSDT") == ("long-tail", "http://10.0.0.12:8080")
    done = cli("plan", "--config", str(example), "--cluster-path", "/etc/feature-service/cluster.yaml")
    assert done.returncode == 0, done.stderr
    assert list(shard_blocks(done.stdout)) == ["majors", "alts", "long-tail"]
    assert "# note:" not in done.stdout
    assert yaml.safe_load(shard_blocks(done.stdout)["long-tail"])["gateway"]["silence_ms"] == 15000
