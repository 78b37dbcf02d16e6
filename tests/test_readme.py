"""README stays true to the code: every command and every shard config key is documented."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

import pytest

from tools.cli import build_parser
from tools.shard.config import ShardConfig

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def _commands() -> list[list[str]]:
    out = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                out += [[name, s] for a in nested for s in a.choices] or [[name]]
    return out


def _keys(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        keys += _keys(t, f"{prefix}{f.name}.") if dataclasses.is_dataclass(t) else [prefix + f.name]
    return keys


def test_every_command_and_subcommand_is_in_the_cli_reference() -> None:
    cli = _section("CLI reference")
    missing = []
    for words in _commands():
        head, *rest = words
        spans = [line.split("`")[1] for line in cli.splitlines() if line.startswith((f"| `{head} ", f"| `{head}`"))]
        # the command's own code span names the sub-command (`registry check\|hash\|show [FILE]`)
        if not spans or (rest and not any(re.search(rf"(^|[ |]){re.escape(rest[0])}\b", s) for s in spans)):
            missing.append(" ".join(words))
    assert not missing, missing


def test_every_shard_config_key_is_in_the_configuration_reference() -> None:
    table = _section("Configuration reference")
    documented = set(re.findall(r"`([a-z_][a-z0-9_.]*)`", table))
    # rows group siblings: `gateway.reconnect.initial_ms` / `max_ms` / `factor`
    for row in table.splitlines():
        first = re.match(r"\| `([a-z_.]+)\.[a-z0-9_]+`", row)
        if first:
            documented |= {f"{first.group(1)}.{k}" for k in re.findall(r"`([a-z0-9_]+)`", row)}
    missing = [k for k in _keys(ShardConfig) if k not in documented]
    assert not missing, missing


def test_store_query_examples_run_against_a_compacted_store(shared_bybit: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's duckdb / polars / pyarrow snippets work on a real store, as written."""
    from gateway_bridge.importer import import_files
    from journal.store.compact import compact
    from journal.store.config import StoreConfig
    from tests.conftest import SOL_DOGE_FRAMES

    import_files(str(tmp_path / "data" / "journal"), "frames", [str(shared_bybit / SOL_DOGE_FRAMES)])
    compact(tmp_path / "data" / "journal", StoreConfig(dir=str(tmp_path / "data" / "store"), checkpoints=False))
    section = README[README.index("### Querying the store"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    scope: dict[str, typing.Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), scope)  # noqa: S102 - the documented snippet itself
    assert scope["levels"].height > 0 and set(scope["levels"].columns) == {"seq", "recv_time", "bid_price", "bid_size"}
    assert scope["ticks"].num_rows > 0
