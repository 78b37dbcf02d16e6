"""The store-upkeep units: a oneshot compact-then-retention service, a daily persistent timer; both verify."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.systemd.test_units import SHARD, UNITS, one, parse_unit
from tools import cli

SERVICE = UNITS / "feature-retention@.service"
TIMER = UNITS / "feature-retention@.timer"
EXE = "/opt/feature-service/.venv/bin/feature-service"


def test_service_is_a_oneshot_compacting_then_applying_retention() -> None:
    unit = parse_unit(SERVICE)
    assert set(unit) == {"Unit", "Service"}  # started by its timer only
    assert one(unit, "Service", "Type") == "oneshot"
    assert unit["Service"]["ExecStart"] == [
        f"{EXE} compact --config /etc/feature-service/%i.yaml",
        f"{EXE} retention run --config /etc/feature-service/%i.yaml",
    ]
    assert "Restart" not in unit["Service"] and "WatchdogSec" not in unit["Service"]


def test_service_has_the_shards_user_paths_and_hardening() -> None:
    unit, shard = parse_unit(SERVICE)["Service"], parse_unit(SHARD)["Service"]
    same = ("User", "Group", "UMask", "StateDirectory", "ReadWritePaths", "CacheDirectory", "Environment")
    assert {k: unit.get(k) for k in same} == {k: shard.get(k) for k in same}
    hardening = {k: v for k, v in shard.items() if k.startswith(("Protect", "Private", "Restrict"))
                 or k in ("NoNewPrivileges", "LockPersonality")}
    assert len(hardening) >= 12 and {k: unit.get(k) for k in hardening} == hardening
    assert "MemoryDenyWriteExecute" not in unit


def test_exec_lines_are_valid_cli_invocations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ExecStart parses with the real argument parser (commands not wired into the CLI yet are skipped)."""
    monkeypatch.setitem(cli.COMMANDS, "retention", cli.COMMANDS.get(
        "retention", ("tools.offline.cmd_retention", "retention")))
    parser = cli.build_parser()
    parsed = []
    for line in parse_unit(SERVICE)["Service"]["ExecStart"]:
        argv = shlex.split(line)
        assert argv[0] == EXE
        if argv[1] not in cli.COMMANDS:
            continue
        args = parser.parse_args(argv[1:])
        assert args.command == argv[1] and args.config == "/etc/feature-service/%i.yaml"
        parsed.append(argv[1])
    assert "retention" in parsed


def test_timer_is_daily_persistent_and_randomised() -> None:
    unit = parse_unit(TIMER)
    assert set(unit) == {"Unit", "Timer", "Install"}
    assert one(unit, "Timer", "OnCalendar") == "*-*-* 00:30:00 UTC"  # after the UTC date (partition) rolls
    assert one(unit, "Timer", "Persistent") == "true"
    assert one(unit, "Timer", "RandomizedDelaySec") == "30min"
    assert one(unit, "Timer", "Unit") == "feature-retention@%i.service"
    assert one(unit, "Install", "WantedBy") == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` on copies whose ExecStart names an existing executable: exit 0, no warnings."""
    exe = Path(sys.executable).parent / "feature-service"
    exe_path = str(exe) if exe.exists() else shutil.which("true")
    assert exe_path
    for src in (SERVICE, TIMER):
        (tmp_path / src.name).write_text(src.read_text().replace(EXE, exe_path))
    names = [str(tmp_path / "feature-retention@alpha.service"),
             str(tmp_path / "feature-retention@alpha.timer")]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert [ln for ln in done.stderr.splitlines() if "feature-" in ln] == []
    cal = subprocess.run(["systemd-analyze", "calendar", one(parse_unit(TIMER), "Timer", "OnCalendar")],
                         capture_output=True, text=True, timeout=30, check=False)
    assert cal.returncode == 0 and "00:30:00 UTC" in cal.stdout, cal.stderr
