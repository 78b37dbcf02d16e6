"""The model-service config file: one YAML document, validated at start, errors naming the key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tools.shard.config import ApiConfig, LogConfig, PublishConfig, check_endpoint
from tools.typedconfig import ConfigError, build, load_yaml_file

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")


@dataclass(frozen=True)
class SubscribeConfig:
    """Where vectors come from (YAML key ``subscribe``): the features.live endpoints of one or more shards."""

    endpoints: tuple[str, ...] = ("tcp://127.0.0.1:5560",)
    #: Symbols scored; empty: every symbol the shards publish.
    symbols: tuple[str, ...] = ()
    #: Vectors queued in the SUB socket before ZMQ drops new ones.
    rcvhwm: int = 100_000

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("endpoints: at least one features.live endpoint is required")
        for i, e in enumerate(self.endpoints):
            check_endpoint(e, f"endpoints[{i}]")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("endpoints: an endpoint is listed twice")
        for i, s in enumerate(self.symbols):
            if not _SYMBOL.match(s):
                raise ValueError(f"symbols[{i}]: {s!r} is not an upper-case Bybit symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols: a symbol is listed twice")
        if not 1 <= self.rcvhwm <= 10_000_000:
            raise ValueError(f"rcvhwm: {self.rcvhwm} is not within [1, 10000000]")


@dataclass(frozen=True)
class ModelApiConfig(ApiConfig):
    """model-service's REST API (YAML key ``api``): the shard's settings, default port 8090."""

    port: int = 8090


@dataclass(frozen=True)
class TrainingConfig:
    """Training jobs (YAML key ``training``): worker processes, and their niceness so scoring keeps the CPU."""

    workers: int = 1
    nice: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers: {self.workers} is not within [1, 64]")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"nice: {self.nice} is not within [0, 19]")


@dataclass(frozen=True)
class AutoTrainConfig:
    """Train on each ``features.dataset.ready`` announcement (YAML key ``auto_train``); off by default."""

    enabled: bool = False
    #: The train request template: the dataset comes from the announcement.
    horizon: str = ""
    model: dict[str, Any] = field(default_factory=lambda: {"kind": "auto"})
    #: Activate the model when its training is done.
    activate: bool = False

    def __post_init__(self) -> None:
        if self.enabled and not self.horizon:
            raise ValueError("horizon: required when auto_train.enabled is true (a horizon of the datasets, e.g. 60s)")


@dataclass(frozen=True)
class ModelServiceConfig:
    """Everything one model-service process reads at start."""

    #: Models live under ``<data_dir>/models/``.
    data_dir: str = "data"
    #: Where dataset ids resolve; empty: ``<data_dir>/datasets`` (the shard's, when data_dir is the shard's).
    datasets_dir: str = ""
    subscribe: SubscribeConfig = field(default_factory=SubscribeConfig)
    #: The model.predictions PUB socket (the shard's publish settings, another default port).
    publish: PublishConfig = field(default_factory=lambda: PublishConfig(endpoint="tcp://127.0.0.1:5570"))
    api: ModelApiConfig = field(default_factory=ModelApiConfig)
    #: Vectors with an invalid book (``book_valid`` 0): ``skip`` them or ``score`` them anyway.
    invalid_book: Literal["skip", "score"] = "skip"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    auto_train: AutoTrainConfig = field(default_factory=AutoTrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if not self.data_dir:
            raise ValueError("data_dir: must not be empty")
        if self.publish.endpoint in self.subscribe.endpoints:
            raise ValueError(f"publish.endpoint: {self.publish.endpoint} is also in subscribe.endpoints")

    @property
    def models_dir(self) -> Path:
        """``<data_dir>/models``."""
        return Path(self.data_dir) / "models"


def load_config(path: str | Path) -> ModelServiceConfig:
    """Load and validate a model-service config file; errors name the file and the dotted key."""
    try:
        cfg = build(ModelServiceConfig, load_yaml_file(path))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return resolve(cfg)


def resolve(cfg: ModelServiceConfig) -> ModelServiceConfig:
    """Fill derived defaults: the datasets directory under the data dir unless given."""
    if not cfg.datasets_dir:
        cfg = replace(cfg, datasets_dir=str(Path(cfg.data_dir) / "datasets"))
    return cfg
