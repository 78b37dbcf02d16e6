"""Turn a cluster config into each shard's config file and the commands that install and start it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway_bridge.config import GatewayConfig
from journal.config import JournalConfig
from tools.cluster.config import DATA_ROOT, ClusterConfig, ShardEntry
from tools.typedconfig import build

#: Where the systemd unit ``feature-shard@NAME.service`` reads its config.
ETC = "/etc/feature-service"
#: Directories the unit's hardening hides from the shard (ProtectHome=, PrivateTmp=).
HIDDEN = ("/home/", "/root/", "/run/user/", "/tmp/", "/var/tmp/")


@dataclass(frozen=True)
class ShardPlan:
    """One shard's config file, where it goes, and on which host."""

    name: str
    host: str
    #: Path the unit reads: ``/etc/feature-service/NAME.yaml``.
    target: str
    #: The shard config, in the shard config's key layout.
    config: dict[str, Any]
    #: Operational warnings for this shard (shown as ``# note:`` lines).
    notes: tuple[str, ...]

    @property
    def unit(self) -> str:
        """The systemd instance running this shard."""
        return f"feature-shard@{self.name}.service"

    def yaml_text(self) -> str:
        """The config file's text: the notes as comments, then the YAML."""
        notes = "".join(f"# note: {n}\n" for n in self.notes)
        return notes + yaml.safe_dump(self.config, sort_keys=False, default_flow_style=False)


def shard_config(cfg: ClusterConfig, shard: ShardEntry, cluster_path: str) -> dict[str, Any]:
    """The shard config for `shard`: defaults merged with its entry, keyed as the shard config is."""
    merged = cfg.gateway_of(shard)
    gw = build(GatewayConfig, merged)
    gateway = {"endpoint": gw.endpoint, "control_endpoint": gw.control_endpoint}
    gateway.update((k, v) for k, v in merged.items() if k not in gateway)
    journal = {"fsync": JournalConfig().fsync, **cfg.defaults.journal}
    return {
        "data_dir": shard.data_path,
        "shard": {"name": shard.name, "symbols": list(shard.symbols), "category": cfg.category_of(shard)},
        "gateway": gateway,
        "journal": journal,
        "publish": {"endpoint": shard.publish_endpoint},
        "api": {"host": shard.api.host, "port": shard.api.port},
        "cluster": cluster_path,
    }


def plan(cfg: ClusterConfig, cluster_path: str) -> list[ShardPlan]:
    """One `ShardPlan` per shard, in the cluster file's order."""
    plans = []
    for s in cfg.shards:
        plans.append(ShardPlan(s.name, s.api.host, f"{ETC}/{s.name}.yaml", shard_config(cfg, s, cluster_path),
                               _notes(s, cluster_path)))
    return plans


def write_files(plans: list[ShardPlan], out_dir: Path) -> dict[str, Path]:
    """Write ``NAME.yaml`` per shard under `out_dir` (created); return shard name -> file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for p in plans:
        path = out_dir / f"{p.name}.yaml"
        path.write_text(p.yaml_text(), encoding="utf-8")
        written[p.name] = path.resolve()
    return written


def render(cfg: ClusterConfig, plans: list[ShardPlan], cluster_path: str, sources: dict[str, str],
           cluster_source: str | None = None) -> str:
    """The text `cluster plan` prints: each config, the commands per host, the subscriber hint.

    `sources` maps a shard to the file its install line copies from; `cluster_source` is the cluster
    file to install at `cluster_path` on every host (None: it is already there).
    """
    symbols = sum(len(s.symbols) for s in cfg.shards)
    out = [f"# cluster {cfg.cluster.name}: {len(plans)} shards, {symbols} symbols; shards read {cluster_path}", ""]
    for p in plans:
        out.append(f"# ==> {p.target} <== shard {p.name} on {p.host}")
        out.extend([p.yaml_text().rstrip("\n"), ""])
    out.extend(_commands(plans, cluster_path, sources, cluster_source))
    out.extend(_subscriber_hint(plans))
    return "\n".join(out) + "\n"


def _commands(plans: list[ShardPlan], cluster_path: str, sources: dict[str, str],
              cluster_source: str | None) -> list[str]:
    """Install and start commands, grouped by host in the order hosts first appear."""
    hosts: dict[str, list[ShardPlan]] = {}
    for p in plans:
        hosts.setdefault(p.host, []).append(p)
    out = ["# --- commands, per host (the unit file and the feature-service user installed once per host) ---"]
    if cluster_source is None and len(hosts) > 1:
        out.append(f"# copy {cluster_path} to the same path on every host")
    for host, group in hosts.items():
        out.append(f"# on {host}: {', '.join(p.name for p in group)}")
        if cluster_source is not None:
            out.append(f"install -D -m 0644 {cluster_source} {cluster_path}")
        for p in group:
            out.append(f"install -D -m 0644 {sources[p.name]} {p.target}")
            out.append(f"systemctl enable --now {p.unit}")
    out.append("")
    return out


def _subscriber_hint(plans: list[ShardPlan]) -> list[str]:
    """A subscriber wanting every symbol: one SUB socket connected to every shard's endpoint."""
    endpoints = ", ".join(repr(p.config["publish"]["endpoint"]) for p in plans)
    return [
        "# --- a subscriber wanting every symbol: one SUB socket connected to every shard ---",
        "#   sub = zmq.Context.instance().socket(zmq.SUB)",
        '#   sub.setsockopt(zmq.SUBSCRIBE, b"features.live.")',
        f"#   for endpoint in [{endpoints}]:",
        "#       sub.connect(endpoint)",
    ]


def _notes(shard: ShardEntry, cluster_path: str) -> tuple[str, ...]:
    """Warnings about settings the systemd unit's hardening would defeat."""
    notes = []
    default_dir = f"{DATA_ROOT}/{shard.name}"
    if shard.data_path != default_dir:
        notes.append(f"data_dir is not {default_dir}: the unit makes only that writable; add "
                     f"ReadWritePaths={shard.data_path} with `systemctl edit feature-shard@{shard.name}.service`")
    if cluster_path.startswith(HIDDEN):
        notes.append(f"{cluster_path} is hidden from the unit (ProtectHome/PrivateTmp); "
                     f"pass --cluster-path {ETC}/cluster.yaml")
    endpoint = shard.publish_endpoint
    if endpoint.startswith("ipc://") and not endpoint[len("ipc://"):].startswith(shard.data_path + "/"):
        notes.append(f"publish_endpoint {endpoint} is outside data_dir: ProtectSystem=strict lets the "
                     "shard create its socket only under data_dir")
    return tuple(notes)
