"""The `feature-service` front door: --version, -q/-v, --help everywhere, one-line errors with their exit codes."""

from __future__ import annotations

import argparse
import configparser
import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.test_replay_cli import build_journal

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=cwd or ROOT)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def command_paths() -> list[list[str]]:
    """Every command of tools.cli.COMMANDS and every sub-command under it, as argv prefixes."""
    from tools.cli import COMMANDS, build_parser

    def walk(p: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
        found = [path]
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    found += walk(sub, [*path, name])
        return found

    paths = walk(build_parser(), [])
    assert {p[0] for p in paths if p} == set(COMMANDS)
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "feature-service")
def test_every_command_and_sub_command_has_help(path: list[str]) -> None:
    done = cli(*path, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: {' '.join(['feature-service', *path])}")


def test_the_sub_commands_the_readme_documents_are_there() -> None:
    paths = {" ".join(p) for p in command_paths()}
    assert {"registry check", "registry hash", "registry show", "registry functions", "journal stats", "journal cat",
            "journal import", "bench journal", "replay", "shard", "demo"} <= paths


def test_version_comes_from_the_package_metadata() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    done = cli("--version")
    assert done.returncode == 0 and done.stdout == f"feature-service {cfg['metadata']['version']}\n"


@pytest.mark.parametrize("args,words", [
    ([], ["COMMAND"]),
    (["nope"], ["'nope'"]),
    (["registry", "show", "--bogus"], ["--bogus"]),
    (["replay", "--out", "x.parquet"], ["--journal"]),
    (["-q", "-v", "registry", "hash"], ["-q", "-v"]),
    (["registry", "frobnicate"], ["'frobnicate'"]),
    (["bench", "journal", "--repeats", "x"], ["--repeats", "'x'"]),
])
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], words: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    line = one_line(done)
    assert "error:" in line and "--help" in line
    for w in words:
        assert w in line


SHARD = """
shard: {name: s1, symbols: [SOLUSDT]}
gateway: {endpoint: "tcp://127.0.0.1:6000"}
journal: {dir: %s}
"""


@pytest.mark.parametrize("command", ["shard", "gateway-sim"])
def test_log_level_bogus_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SHARD % (tmp_path / "journal"))
    done = cli(command, "--config", str(cfg), "--log-level", "bogus")
    assert done.returncode == 2
    assert "'bogus'" in one_line(done)
    assert list(tmp_path.iterdir()) == [cfg]  # the shard did not start: no journal


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "journal"
    build_journal(d, seconds=5)
    return d


def log_events(stderr: str) -> list[tuple[str, str]]:
    """(level, event) of every JSON log line."""
    return [(doc["level"], doc["event"]) for doc in map(json.loads, stderr.splitlines())]


def test_q_and_v_set_the_log_level(journal: Path, tmp_path: Path) -> None:
    """INFO by default (replay_done, no debug), -q hides INFO, -v shows DEBUG (replay_start)."""
    runs = {flag: cli(*([flag] if flag else []), "replay", "--journal", str(journal), "--out",
                      str(tmp_path / f"o{flag}.parquet")) for flag in ("", "-q", "-v")}
    for done in runs.values():
        assert done.returncode == 0, done.stderr
    assert log_events(runs[""].stderr) == [("info", "replay_done")]
    assert log_events(runs["-q"].stderr) == []
    assert log_events(runs["-v"].stderr) == [("debug", "replay_start"), ("info", "replay_done")]
    assert json.loads(runs["-q"].stdout)["rows"] == json.loads(runs[""].stdout)["rows"] > 0


def test_q_keeps_warnings(journal: Path, tmp_path: Path) -> None:
    done = cli("-q", "replay", "--journal", str(journal), "--out", str(tmp_path / "o"), "--from", "2030-01-01")
    assert done.returncode == 0 and log_events(done.stderr) == [("warning", "replay_no_rows")]


def test_an_os_error_is_one_line_naming_the_path_and_exit_1(journal: Path) -> None:
    """/proc takes no new files: the write fails with the OS's reason, in one line, nothing left behind."""
    done = cli("replay", "--journal", str(journal), "--out", "/proc/fs-test/x")
    assert done.returncode == 1
    assert "/proc/fs-test: No such file or directory" in one_line(done)


def test_a_file_as_journal_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "j").write_text("x")
    done = cli("replay", "--journal", str(tmp_path / "j"), "--out", str(tmp_path / "o.parquet"))
    assert done.returncode == 1 and str(tmp_path / "j") in one_line(done)


# -- the handler's table, on real exceptions of each family ---------------------------------------

def families() -> list[tuple[BaseException, int, str]]:
    from journal.errors import JournalCorruption, JournalError
    from journal.feature_log import FeatureTableError
    from registry import RegistryError
    from tools.cli import UsageError
    from tools.typedconfig import ConfigError

    return [
        (JournalCorruption("/j/00000000000000000001.seg", 17, "CRC mismatch"), 1,
         "journal error: /j/00000000000000000001.seg: CRC mismatch at offset 17"),
        (JournalError("journal /j: locked by pid 12"), 1, "journal error: journal /j: locked by pid 12"),
        (OSError(errno.ENOSPC, "No space left on device"), 1, "error: No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/x"), 1, "error: /ro/x: Permission denied"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "a", None, "b"), 1,
         "error: a -> b: No such file or directory"),
        (FeatureTableError("x.parquet: directory no does not exist"), 1,
         "output error: x.parquet: directory no does not exist"),
        (RegistryError("bad duration '3x'", "r.yaml", "features[1] 'v'", "window"), 2,
         "registry error: r.yaml: features[1] 'v': window: bad duration '3x'"),
        (ConfigError("gateway.max_batch: must be in [1, 100000]"), 2,
         "config error: gateway.max_batch: must be in [1, 100000]"),
        (UsageError("--from 'x' is not a time"), 2, "error: --from 'x' is not a time"),
    ]


@pytest.mark.parametrize("exc,code,text", families(), ids=lambda v: type(v).__name__ if isinstance(v, BaseException)
                         else None)
def test_known_error_families_map_to_one_line_and_their_exit_code(exc: BaseException, code: int, text: str) -> None:
    from tools.cli import classify

    assert classify(exc) == (code, text)


@pytest.mark.parametrize("exc", [RuntimeError("bug"), KeyError("k"), ValueError("a bare ValueError is a bug")])
def test_anything_else_is_a_bug_and_keeps_its_traceback(exc: BaseException) -> None:
    from tools.cli import classify

    assert classify(exc) is None


def test_the_exit_codes_are_documented_in_the_module_docstring() -> None:
    import tools.cli

    doc = tools.cli.__doc__ or ""
    for code in ("0 ", "1 ", "2 ", "130", "141"):
        assert f"\n  {code}" in doc
