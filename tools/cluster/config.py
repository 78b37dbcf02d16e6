"""The cluster config: which shard owns which symbols, where each publishes and serves its API.

One YAML file describes a deployment::

    cluster: {name: prod}
    defaults:                      # every shard inherits these (a shard config fragment)
      category: linear
      gateway: {endpoint: tcp://10.0.0.5:5556, control_endpoint: tcp://10.0.0.5:5557}
      journal: {fsync: interval_ms}
    shards:
      - name: majors
        symbols: [BTCUSDT, ETHUSDT]
        publish_endpoint: tcp://10.0.0.11:5560
        api: {host: 10.0.0.11, port: 8080}
        data_dir: /var/lib/feature-service/majors   # the default for this name
        gateway: {silence_ms: 3000}                 # optional, merged over defaults.gateway

Addresses are the ones other processes connect to, so wildcards (``0.0.0.0``) are refused. Every
symbol has exactly one owner; names, bound addresses and data directories never collide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from gateway_bridge.config import GatewayConfig
from journal.config import JournalConfig
from tools.typedconfig import ConfigError, build, load_yaml_file

Category = Literal["linear", "inverse", "spot", "option"]
#: (key inside the shard entry, the value that must be unique, how to name it in an error)
Claim = tuple[str, Any, str]

#: Where a shard keeps its data unless its entry says otherwise (the unit's StateDirectory).
DATA_ROOT = "/var/lib/feature-service"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TCP = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})")
_WILDCARDS = {"*", "0.0.0.0", "::", "[::]"}
_SAME_HOST = {"localhost": "127.0.0.1"}


@dataclass(frozen=True)
class ClusterSection:
    """The deployment's identity (YAML key ``cluster``)."""

    name: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"name: {self.name!r} must be 1-64 letters, digits, '-' or '_'")


@dataclass(frozen=True)
class ApiAddress:
    """Where a shard's REST API listens, and where other shards send clients (YAML ``api``)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        _check_host(self.host, "host")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not in 1..65535")

    @property
    def base_url(self) -> str:
        """``http://host:port`` (IPv6 literals bracketed)."""
        host = self.host if ":" not in self.host or self.host.startswith("[") else f"[{self.host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class ShardEntry:
    """One shard of the cluster: its symbols, endpoints and data directory (YAML ``shards[i]``)."""

    name: str
    symbols: tuple[str, ...]
    #: ZMQ PUB endpoint of features.live: bound by the shard, connected to by subscribers.
    publish_endpoint: str
    api: ApiAddress
    #: Absolute; empty means ``/var/lib/feature-service/<name>`` (what the systemd unit makes writable).
    data_dir: str = ""
    #: Market category; empty means ``defaults.category``.
    category: Category | None = None
    #: Gateway keys merged over ``defaults.gateway`` for this shard only.
    gateway: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"name: {self.name!r} must be 1-64 letters, digits, '-' or '_' "
                             "(it names the systemd instance and the config file)")
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is required")
        seen: dict[str, int] = {}
        for i, s in enumerate(self.symbols):
            if not s or not s.isalnum() or s.upper() != s:
                raise ValueError(f"symbols[{i}]: {s!r} is not an upper-case Bybit symbol")
            if s in seen:
                raise ValueError(f"symbols[{i}]: {s} is listed twice (also symbols[{seen[s]}])")
            seen[s] = i
        bound_address(self.publish_endpoint, "publish_endpoint")
        if self.data_dir and not PurePosixPath(self.data_dir).is_absolute():
            raise ValueError(f"data_dir: {self.data_dir!r} must be an absolute path")

    @property
    def data_path(self) -> str:
        """The data directory, default filled in."""
        return self.data_dir or f"{DATA_ROOT}/{self.name}"


@dataclass(frozen=True)
class Defaults:
    """What every shard inherits (YAML ``defaults``); sections are kept verbatim for the shard configs."""

    category: Category = "linear"
    gateway: dict[str, Any] = field(default_factory=dict)
    journal: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(GatewayConfig, self.gateway, "gateway")
        if "dir" in self.journal:
            raise ValueError("journal.dir: one journal per shard; each lives under its shard's data_dir")
        _validate(JournalConfig, self.journal, "journal")


@dataclass(frozen=True)
class ClusterConfig:
    """A whole deployment: shards with disjoint symbol sets and non-colliding addresses."""

    cluster: ClusterSection
    shards: tuple[ShardEntry, ...]
    defaults: Defaults = field(default_factory=Defaults)

    def __post_init__(self) -> None:
        if not self.shards:
            raise ValueError("shards: at least one shard is required")
        _check_names(self.shards)
        _check_symbols(self.shards)
        _unique(self.shards, _addresses)
        _unique(self.shards, _data_dirs)
        for i, s in enumerate(self.shards):
            _validate(GatewayConfig, self.gateway_of(s), f"shards[{i}].gateway", " (merged over defaults.gateway)")

    def owner_of(self, symbol: str) -> tuple[str, str] | None:
        """Return (shard name, API base url ``http://host:port``) of the shard owning `symbol`."""
        for s in self.shards:
            if symbol in s.symbols:
                return s.name, s.api.base_url
        return None

    def shard(self, name: str) -> ShardEntry | None:
        """Return the shard entry called `name`, if any."""
        return next((s for s in self.shards if s.name == name), None)

    def mismatch(self, name: str, symbols: tuple[str, ...] | list[str]) -> str | None:
        """Why a shard called `name` owning `symbols` disagrees with this file (None: it agrees).

        A shard whose own config drifted from the cluster file would answer 404s wrongly; the
        shard logs this at start.
        """
        entry = self.shard(name)
        if entry is None:
            return f"cluster {self.cluster.name!r} has no shard named {name!r}"
        missing, extra = sorted(set(entry.symbols) - set(symbols)), sorted(set(symbols) - set(entry.symbols))
        if not missing and not extra:
            return None
        parts = [f"not served here: {', '.join(missing)}"] if missing else []
        if extra:
            parts.append(f"not in the cluster file: {', '.join(extra)}")
        return f"shard {name!r} symbols differ from cluster {self.cluster.name!r} ({'; '.join(parts)})"

    def gateway_of(self, shard: ShardEntry) -> dict[str, Any]:
        """The gateway section this shard runs with: its overrides merged over ``defaults.gateway``."""
        return _merge(self.defaults.gateway, shard.gateway)

    def category_of(self, shard: ShardEntry) -> str:
        """The shard's market category (its own, else the default)."""
        return shard.category or self.defaults.category


def load_cluster_config(path: str | Path) -> ClusterConfig:
    """Load and validate a cluster file; errors name the file and the dotted key."""
    try:
        return build(ClusterConfig, load_yaml_file(path))
    except ConfigError as e:
        msg = " ".join(line.strip() for line in str(e).splitlines() if line.strip())  # YAML errors span lines
        raise ConfigError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from None


def bound_address(endpoint: str, key: str) -> tuple[str, str | int]:
    """Return (host, port) of a ``tcp://host:port`` or ("ipc", path) of an ``ipc:///abs`` endpoint."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        if not path.startswith("/"):
            raise ValueError(f"{key}: {endpoint!r} needs an absolute path (ipc:///run/...)")
        return "ipc", path
    m = _TCP.fullmatch(endpoint)
    if not m:
        raise ValueError(f"{key}: {endpoint!r} is not tcp://host:port or ipc:///path")
    _check_host(m["host"], key)
    port = int(m["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"{key}: port {port} is not in 1..65535")
    return _host(m["host"]), port


def _check_host(host: str, key: str) -> None:
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise ValueError(f"{key}: {host!r} is not a host name or address")
    if host in _WILDCARDS:
        raise ValueError(f"{key}: {host!r} is a wildcard; name the address other hosts connect to")


def _host(host: str) -> str:
    """Spell one host one way, so ``localhost`` and ``127.0.0.1`` collide."""
    host = host.lower().strip("[]")
    return _SAME_HOST.get(host, host)


def _addresses(s: ShardEntry) -> list[Claim]:
    """What this shard binds: its publish endpoint and its API port."""
    kind, where = bound_address(s.publish_endpoint, "publish_endpoint")
    shown = f"ipc://{where}" if kind == "ipc" else f"{kind}:{where}"
    api = (_host(s.api.host), s.api.port)
    return [("publish_endpoint", (kind, where), f"address {shown}"),
            ("api.port", api, f"address {api[0]}:{api[1]}")]


def _data_dirs(s: ShardEntry) -> list[Claim]:
    """The data directory on the shard's host (two shards on one host cannot share a journal)."""
    return [("data_dir", (_host(s.api.host), s.data_path), f"data_dir {s.data_path} on host {s.api.host}")]


def _unique(shards: tuple[ShardEntry, ...], claims: Callable[[ShardEntry], list[Claim]]) -> None:
    """Raise naming both shards when two of their claims (key, value, description) have one value."""
    owner: dict[Any, tuple[int, str]] = {}
    for i, s in enumerate(shards):
        for key, value, shown in claims(s):
            if value in owner:
                j, other_key = owner[value]
                if j == i:
                    raise ValueError(f"shards[{i}].{key}: shard {s.name!r} uses {shown} for {other_key} too")
                raise ValueError(f"shards[{i}].{key}: shard {s.name!r} and shard {shards[j].name!r} "
                                 f"(shards[{j}].{other_key}) both use {shown}")
            owner[value] = (i, key)


def _check_names(shards: tuple[ShardEntry, ...]) -> None:
    """Shard names are unique: they name systemd instances and config files."""
    first: dict[str, int] = {}
    for i, s in enumerate(shards):
        if s.name in first:
            raise ValueError(f"shards[{i}].name: {s.name!r} is also the name of shards[{first[s.name]}]")
        first[s.name] = i


def _check_symbols(shards: tuple[ShardEntry, ...]) -> None:
    """A symbol belongs to exactly one shard: name the symbol and both shards otherwise."""
    owner: dict[str, tuple[int, int]] = {}
    for i, s in enumerate(shards):
        for k, sym in enumerate(s.symbols):
            if sym in owner:
                j, m = owner[sym]
                raise ValueError(f"shards[{i}].symbols[{k}]: {sym} is in shard {s.name!r} and in shard "
                                 f"{shards[j].name!r} (shards[{j}].symbols[{m}]); a symbol has one owner")
            owner[sym] = (i, k)


def _validate(cls: type, data: dict[str, Any], key: str, hint: str = "") -> None:
    """Check a verbatim section against its subsystem's typed config; errors keep the relative key."""
    try:
        build(cls, data)
    except ConfigError as e:
        raise ValueError(f"{key}.{e}{hint}") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`, nested mappings merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
