"""The systemd units: they parse, carry the required settings, agree with the CLI, and pass verify."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.cli import build_parser

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SHARD = UNITS / "feature-shard@.service"
SIM = UNITS / "feature-gateway-sim.service"
MODEL = UNITS / "model-service.service"
HARDENING = ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome", "PrivateDevices",
             "RestrictAddressFamilies")

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Parse a unit file as INI: sections, ``Key=value`` lines (keys may repeat), ``#``/``;`` comments."""
    unit: Unit = {}
    section = None
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path.name}:{n}: continuation lines are not used here"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            assert section not in unit, f"{path.name}:{n}: section [{section}] repeated"
            unit[section] = {}
            continue
        key, eq, value = line.partition("=")
        assert eq and section is not None, f"{path.name}:{n}: not a Key=value line: {raw!r}"
        assert key.strip() and key.strip().isalnum(), f"{path.name}:{n}: bad key {key!r}"
        unit[section].setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of `key`; fails when absent or repeated."""
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, got {values}"
    return values[0]


def test_shard_unit_has_the_required_settings() -> None:
    unit = parse_unit(SHARD)
    assert set(unit) == {"Unit", "Service", "Install"}
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "10", "Restart": "always",
        "RestartSec": "1",
        "ExecStart": "/opt/feature-service/.venv/bin/feature-service shard --config /etc/feature-service/%i.yaml",
        "StateDirectory": "feature-service/%i", "User": "feature-service", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/feature-service/%i", "PrivateTmp": "yes",
        "ProtectHome": "yes", "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "LimitNOFILE": "65536",
        "TimeoutStopSec": "30", "KillSignal": "SIGTERM",
    }
    assert {k: one(unit, "Service", k) for k in expected} == expected
    assert "DynamicUser" not in unit["Service"]
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_shard_unit_state_directory_is_the_writable_path_and_numba_can_cache() -> None:
    """StateDirectory= (relative to /var/lib) is exactly ReadWritePaths=; numba's cache is writable."""
    unit = parse_unit(SHARD)
    assert "/var/lib/" + one(unit, "Service", "StateDirectory") == one(unit, "Service", "ReadWritePaths")
    env = dict(v.split("=", 1) for v in unit["Service"]["Environment"])
    cache = "/var/cache/" + one(unit, "Service", "CacheDirectory")
    assert env["NUMBA_CACHE_DIR"].startswith(cache + "/")
    assert "MemoryDenyWriteExecute" not in unit["Service"]  # would break numba's JIT


def test_gateway_sim_unit_is_simple_with_the_same_hardening() -> None:
    sim_unit = parse_unit(SIM)
    sim, shard = sim_unit["Service"], parse_unit(SHARD)["Service"]
    assert one(sim_unit, "Service", "Type") == "simple"
    assert one(sim_unit, "Service", "User") == "feature-service"
    hardening = {k: v for k, v in shard.items() if k.startswith(("Protect", "Private", "Restrict"))
                 or k in ("NoNewPrivileges", "LockPersonality")}
    assert set(HARDENING) <= set(hardening)
    assert {k: sim.get(k) for k in hardening} == hardening
    assert "WatchdogSec" not in sim and "StateDirectory" not in sim


@pytest.mark.parametrize("path,command", [(SHARD, "shard"), (SIM, "gateway-sim")])
def test_exec_start_is_a_valid_cli_invocation(path: Path, command: str) -> None:
    """The unit's command line parses with the real `feature-service` argument parser."""
    argv = shlex.split(one(parse_unit(path), "Service", "ExecStart"))
    assert argv[0] == "/opt/feature-service/.venv/bin/feature-service"
    args = build_parser().parse_args(argv[1:])
    assert args.command == command and args.config.startswith("/etc/feature-service/")


def test_model_service_unit_is_notify_with_its_state_directory_and_the_shards_hardening() -> None:
    unit = parse_unit(MODEL)
    svc, shard = unit["Service"], parse_unit(SHARD)["Service"]
    assert {k: one(unit, "Service", k) for k in ("Type", "NotifyAccess", "Restart", "User")} == {
        "Type": "notify", "NotifyAccess": "main", "Restart": "always", "User": "feature-service"}
    assert "/var/lib/" + one(unit, "Service", "StateDirectory") == one(unit, "Service", "ReadWritePaths")
    hardening = {k: v for k, v in shard.items() if k.startswith(("Protect", "Private", "Restrict"))
                 or k in ("NoNewPrivileges", "LockPersonality")}
    assert {k: svc.get(k) for k in hardening} == hardening
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    from model_service.cli import build_parser as model_parser

    args = model_parser().parse_args(argv[1:])
    assert argv[0] == "/opt/feature-service/.venv/bin/model-service" and args.command == "serve"
    assert args.config == "/etc/feature-service/model-service.yaml"


def test_the_old_unit_name_is_gone_and_sysusers_declares_the_user() -> None:
    assert not (UNITS / "feature-service-shard@.service").exists()
    lines = [ln.split() for ln in (UNITS / "sysusers.d" / "feature-service.conf").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert [ln[:3] for ln in lines] == [["u", "feature-service", "-"]]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` on copies whose ExecStart names an existing executable: exit 0, no warnings."""
    exe = Path(sys.executable).parent / "feature-service"
    exe_path = str(exe) if exe.exists() else shutil.which("true")
    assert exe_path
    names = []
    model_exe = Path(sys.executable).parent / "model-service"
    for src in (SHARD, SIM, MODEL):
        text = src.read_text().replace("/opt/feature-service/.venv/bin/feature-service", exe_path)
        text = text.replace("/opt/feature-service/.venv/bin/model-service",
                            str(model_exe) if model_exe.exists() else exe_path)
        (tmp_path / src.name).write_text(text)
        names.append(str(tmp_path / src.name.replace("@.service", "@alpha.service")))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    ours = [ln for ln in done.stderr.splitlines() if "feature-" in ln or "model-service" in ln]
    assert ours == [], ours


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The verify test above can fail: a missing executable and an unknown key are both reported."""
    bad = tmp_path / "feature-shard@.service"
    bad.write_text(SHARD.read_text().replace("WatchdogSec=10", "WatchdogSec=10\nWatchDogSecs=3"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "feature-shard@x.service")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "is not executable" in done.stderr
    assert "WatchDogSecs" in done.stderr
