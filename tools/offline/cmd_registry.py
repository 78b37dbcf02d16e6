"""`feature-service registry check|hash|show`: validate a feature registry, print its hash or its columns."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry import Registry


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the registry sub-commands."""
    sub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="validate a registry; print its feature count and content hash")
    c.add_argument("file", metavar="FILE", help="registry file (YAML or JSON)")
    h = sub.add_parser("hash", help="print the registry's content hash (hex SHA-256 of its canonical form)")
    h.add_argument("file", metavar="FILE", help="registry file (YAML or JSON)")
    s = sub.add_parser("show", help="print the registry's columns in order")
    s.add_argument("file", nargs="?", default="", metavar="FILE", help="registry file (default: packaged)")


def run(args: argparse.Namespace) -> int:
    """Load the registry and perform the action; a bad registry prints its error and exits 1."""
    from registry import RegistryError
    from tools.registry_file import default_registry, load_registry_file

    try:
        registry = load_registry_file(args.file) if args.file else default_registry()
    except RegistryError as e:
        print(f"feature-service registry {args.registry_command}: {e}", file=sys.stderr)
        return 1
    if args.registry_command == "check":
        print(f"{registry.source}: ok, {len(registry.features)} features, hash {registry.content_hash}")
    elif args.registry_command == "hash":
        print(registry.content_hash)
    else:
        print(show(registry))
    return 0


def show(registry: Registry) -> str:
    """Return a plain-text table of the registry's columns: function, sources, window, cadence, params."""
    from registry import format_duration

    header = ("#", "name", "function", "sources", "window", "every", "params", "inputs", "normalise")
    rows = [header]
    for i, f in enumerate(registry.features):
        norm = f"{f.normalise.method} {_pairs(f.normalise.params)}" if f.normalise else ""
        window = format_duration(f.window_ns) if f.window_ns is not None else ""
        rows.append((str(i), f.name, f.function, ",".join(f.sources), window, format_duration(f.every_ns),
                     _pairs(f.params), ",".join(f.inputs), norm))
    widths = [max(len(r[k]) for r in rows) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    title = f"registry {registry.source} (version {registry.version}, hash {registry.content_hash})"
    return "\n".join([title, *lines])


def _pairs(params: tuple[tuple[str, Any], ...]) -> str:
    """Spell parameters as ``k=v`` words."""
    return " ".join(f"{k}={v}" for k, v in params)
