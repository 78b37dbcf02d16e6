"""Shard config: YAML validated at load, every error naming its dotted key; the CLI exits 2 on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.shard.config import ShardConfig, load_shard_config
from tools.typedconfig import ConfigError, build

GOOD = """
shard: {name: s1, symbols: [SOLUSDT, DOGEUSDT]}
gateway:
  endpoint: tcp://127.0.0.1:6000
  topics: {trades: gw.trades}
  reconnect: {initial_ms: 50}
journal: {dir: /tmp/j, fsync: always}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "shard.yaml"
    p.write_text(text)
    return p


def test_a_good_file_fills_defaults_and_keeps_what_it_sets(tmp_path: Path) -> None:
    cfg = load_shard_config(write(tmp_path, GOOD))
    assert cfg.shard.symbols == ("SOLUSDT", "DOGEUSDT")
    assert cfg.gateway.topics.trades == "gw.trades"
    assert cfg.gateway.topics.ticker == "market.ticker"  # default kept
    assert cfg.gateway.reconnect.initial_ms == 50 and cfg.gateway.reconnect.max_ms == 5000
    assert cfg.journal.fsync == "always" and cfg.journal.fsync_interval_ms == 5
    assert "gw.trades" in cfg.gateway.topics.names()


@pytest.mark.parametrize("text,key", [
    ("gateway: {topics: {trade: x}}", "gateway.topics.trade"),
    ("gateway: {reconnect: {initial_ms: fast}}", "gateway.reconnect.initial_ms"),
    ("journal: {fsync: sometimes}", "journal.fsync"),
    ("journal: {fsync_interval_ms: 0}", "journal.fsync_interval_ms"),
    ("shard: {symbols: [solusdt]}", "shard.symbols[0]"),
    ("shard: {symbols: []}", "shard.symbols"),
    ("shard: {symbols: SOLUSDT}", "shard.symbols"),
    ("jounral: {dir: x}", "jounral"),
    ("gateway: {silence_ms: true}", "gateway.silence_ms"),
])
def test_errors_name_the_file_and_the_dotted_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_shard_config(path)
    assert str(path) in str(e.value)
    assert f"{key}:" in str(e.value)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "shard: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_shard_config(path)


@pytest.mark.parametrize("text,where,problem", [
    # line 3 is "  c: d: e"; the second ':' is its 7th character
    ("a: 1\nb:\n  c: d: e\n", "3:7", "mapping values are not allowed here"),
    ("shard: {name: s1\njournal: {dir: x}\n", "2:8",
     "expected ',' or '}', but got ':' (while parsing a flow mapping at line 1, column 8)"),
    ("a: 1\n\tb: 2\n", "2:1", "found character '\\t' that cannot start any token (while scanning for the next token)"),
])
def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path: Path, text: str, where: str,
                                                                   problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_shard_config(path)
    assert str(e.value) == f"{path}:{where}: not valid YAML: {problem}"


def test_a_binary_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "shard.yaml"
    path.write_bytes(b"shard: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"shard.yaml: not a text file \(byte 7 is not UTF-8\)"):
        load_shard_config(path)


def test_cli_prints_a_yaml_syntax_error_as_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "shard:\n  name: s1\n  symbols: [A: b: c\n")
    done = subprocess.run([sys.executable, "-m", "tools.cli", "shard", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"feature-service shard: config error: {path}:3:")


def test_configs_are_frozen() -> None:
    cfg = build(ShardConfig, {})
    with pytest.raises(AttributeError):
        cfg.shard = None  # type: ignore[misc]


def test_cli_exits_2_and_prints_the_key_on_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "journal: {fsync: sometimes}")
    done = subprocess.run([sys.executable, "-m", "tools.cli", "shard", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "journal.fsync" in done.stderr and "Traceback" not in done.stderr
