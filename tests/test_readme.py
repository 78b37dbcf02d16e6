"""README stays true to the code: every command and every shard config key is documented."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

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
