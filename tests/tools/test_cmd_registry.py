"""`feature-service registry check|hash|show` through the installed console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.registry_file import default_registry

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "feature-service"
GOOD = "version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n  - {name: v, function: vwap, window: 3s}\n"
BAD = "version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n  - {name: v, function: vwap, window: 3x}\n"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script (or `python -m tools.cli` when it is not installed next to python)."""
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tools.cli"]
    return subprocess.run([*cmd, "registry", *args], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A valid and an invalid registry file."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    return good, bad


def test_check_valid_file_prints_count_and_hash(files: tuple[Path, Path]) -> None:
    """A valid registry: exit 0, the file, the feature count and the hash on stdout."""
    from registry import load_registry_text

    done = cli("check", str(files[0]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{files[0]}: ok, 2 features, hash {load_registry_text(GOOD).content_hash}"


def test_check_invalid_file_exits_1_naming_file_feature_field(files: tuple[Path, Path]) -> None:
    """An invalid registry: exit 1 and the error (file, feature, field) on stderr."""
    done = cli("check", str(files[1]))
    assert done.returncode == 1 and done.stdout == ""
    assert f"{files[1]}: features[1] 'v': window: bad duration '3x'" in done.stderr


def test_check_missing_file_exits_1(tmp_path: Path) -> None:
    """An unreadable file is reported, not a traceback."""
    done = cli("check", str(tmp_path / "absent.yaml"))
    assert done.returncode == 1 and "absent.yaml: cannot read registry" in done.stderr
    assert "Traceback" not in done.stderr


def test_hash_prints_only_the_hash() -> None:
    """`registry hash` prints the content hash alone (scriptable)."""
    done = cli("hash", str(ROOT / "registry" / "default.yaml"))
    assert done.returncode == 0 and done.stdout == default_registry().content_hash + "\n"


def test_show_lists_the_default_columns_in_order() -> None:
    """`registry show` without FILE prints the packaged registry, one column per line, in order."""
    done = cli("show")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert default_registry().content_hash in lines[0]
    rows = [line.split() for line in lines[2:]]
    assert [r[1] for r in rows] == list(default_registry().column_names)
    assert rows[6][:5] == ["6", "vwap_3s", "vwap", "trades", "3s"]
    assert rows[20][-2:] == ["side=bid", "levels=5"]
    assert rows[32][-3:] == ["spread_rel", "zscore", "n=300"]


def test_show_file(files: tuple[Path, Path]) -> None:
    """`registry show FILE` prints that file's columns."""
    done = cli("show", str(files[0]))
    assert done.returncode == 0
    assert [line.split()[1] for line in done.stdout.splitlines()[2:]] == ["mid", "v"]
