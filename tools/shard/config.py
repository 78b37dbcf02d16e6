"""The shard's config file: one YAML document composed of each subsystem's typed config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway_bridge.config import GatewayConfig
from journal.config import JournalConfig
from tools.typedconfig import ConfigError, build, load_yaml_file


@dataclass(frozen=True)
class ShardSection:
    """Which symbols this shard owns (YAML key ``shard``)."""

    name: str = "shard-1"
    #: Bybit symbols owned by this shard; frames for any other symbol are rejected as bad frames.
    symbols: tuple[str, ...] = ("BTCUSDT",)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is required")
        for i, s in enumerate(self.symbols):
            if not s or not s.isalnum() or s.upper() != s:
                raise ValueError(f"symbols[{i}]: {s!r} is not an upper-case Bybit symbol")


@dataclass(frozen=True)
class ShardConfig:
    """Everything one shard process reads at start."""

    shard: ShardSection = field(default_factory=ShardSection)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    #: Feature registry file; empty means the packaged ``registry/default.yaml``.
    registry: str = ""


def load_shard_config(path: str | Path) -> ShardConfig:
    """Load and validate a shard config file; errors name the file and the dotted key."""
    data = load_yaml_file(path)
    try:
        return build(ShardConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
