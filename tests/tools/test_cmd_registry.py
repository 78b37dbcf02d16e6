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
    assert column(lines, "params")[20] == "side=bid levels=5"
    assert [column(lines, c)[32] for c in ("inputs", "normalise")] == ["spread_rel", "zscore n=300"]


def column(lines: list[str], title: str) -> list[str]:
    """The cells of column `title` of a `registry show` table (cut at the header's column starts)."""
    header = lines[1]
    start = header.index(title)
    later = [header.index(t) for t in header.split() if header.index(t) > start]
    end = min(later) if later else None
    return [line[start:end].strip() for line in lines[2:]]


def test_show_prints_unit_and_description_per_feature() -> None:
    """Units by hand for a few default columns; every column has both; a z-score's unit is its own."""
    lines = cli("show").stdout.splitlines()
    names, units, texts = column(lines, "name"), column(lines, "unit"), column(lines, "description")
    unit = dict(zip(names, units, strict=True))
    text = dict(zip(names, texts, strict=True))
    assert all(units) and all(texts)
    assert unit["mid_price"] == "quote currency" and unit["spread_rel"] == "ratio"
    assert unit["vol_3s"] == "base units" and unit["time_to_funding"] == "minutes"
    assert unit["spread_rel_z300"] == "standard deviations" and unit["orderbook_churn_rate_1m"] == "changes per second"
    assert text["vwap_15s"] == "volume-weighted average trade price over the last 15s"
    assert text["depth_ask_top10"] == "resting quantity on the best 10 levels of ask"
    assert text["spread_rel_z300"].startswith("zscore over the last n=300 values (one per 1s) of spread_rel: ")


@pytest.mark.parametrize("action", ["check", "hash"])
def test_file_is_optional_and_defaults_to_the_packaged_registry(action: str) -> None:
    """README: FILE is optional; without it the packaged registry is checked or hashed."""
    done = cli(action)
    assert done.returncode == 0, done.stderr
    h = default_registry().content_hash
    want = h + "\n" if action == "hash" else f"registry/default.yaml: ok, {len(default_registry())} features, hash {h}\n"
    assert done.stdout == want


def test_functions_lists_every_function_with_params_ranges_unit_and_description() -> None:
    from registry.catalog import FUNCTIONS

    done = cli("functions")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    heads = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert heads == [*FUNCTIONS, "normalise:"]
    assert "mid_price [quote currency]  sources: orderbook" in out
    assert "vwap [quote currency]  sources: trades  window: required" in out
    assert "    levels: int in [1, 1000], default 5" in out
    assert "    levels: int in [2, 1000], default 10" in out  # slope
    assert "    side: str, one of bid|ask, required" in out
    assert "    seconds: int in [2, 86400], required" in out  # volatility
    assert "    bps: float in [0, 10000], default 10.0" in out
    assert "time_to_funding [minutes]" in out and "churn_rate [changes per second]" in out
    assert "normalise: zscore [standard deviations]" in out and "    n: int in [2, 100000], required" in out


def test_show_file(files: tuple[Path, Path]) -> None:
    """`registry show FILE` prints that file's columns."""
    done = cli("show", str(files[0]))
    assert done.returncode == 0
    assert [line.split()[1] for line in done.stdout.splitlines()[2:]] == ["mid", "v"]


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text("version: 1\nfeatures:\n  - {name: mid, function: mid_price\n")
    done = cli("check", str(bad))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"feature-service registry check: {bad}:4:1: not valid YAML: expected ',' or '}}', but got '<stream end>' "
        "(while parsing a flow mapping at line 3, column 5)"]


def test_a_duplicate_key_is_one_line_with_its_line(tmp_path: Path) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text("version: 1\nfeatures:\n  - {name: mid, function: mid_price}\nversion: 1\n")
    done = cli("check", str(dup))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"feature-service registry check: {dup}:4:1: not valid YAML: "
                                        "found duplicate key 'version'"]
