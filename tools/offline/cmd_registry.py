"""`feature-service registry check|hash|show|functions`: validate a registry, print its hash, columns or the catalogue.

FILE is optional everywhere: without it the packaged registry (`registry/default.yaml`) is used.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry import FeatureDef, Registry
    from registry.catalog import ParamSpec

_FILE_HELP = "registry file, YAML or JSON (default: the packaged registry/default.yaml)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the registry sub-commands."""
    sub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="validate a registry; print its feature count and content hash",
                       description="Validate a registry; print its feature count and content hash (exit 1 if invalid).")
    c.add_argument("file", nargs="?", default="", metavar="FILE", help=_FILE_HELP)
    h = sub.add_parser("hash", help="print the registry's content hash (hex SHA-256 of its canonical form)",
                       description="Print the registry's content hash (hex SHA-256 of its canonical form).")
    h.add_argument("file", nargs="?", default="", metavar="FILE", help=_FILE_HELP)
    s = sub.add_parser("show", help="print the registry's columns in order, with unit and description",
                       description="Print the registry's columns in order, with unit and description.")
    s.add_argument("file", nargs="?", default="", metavar="FILE", help=_FILE_HELP)
    sub.add_parser("functions", help="list the catalogue functions: parameters, ranges, unit, description",
                   description="List every catalogue function a registry may name, and the normalisations: "
                               "sources, window, parameters with their ranges, unit and a one-line description.")


def run(args: argparse.Namespace) -> int:
    """Load the registry and perform the action; a bad registry prints its error and exits 1."""
    from registry import RegistryError
    from tools.registry_file import default_registry, load_registry_file

    if args.registry_command == "functions":
        print(functions())
        return 0
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
    """Return a plain-text table of the registry's columns: function, sources, window, cadence, params, unit, what."""
    from registry import format_duration

    header = ("#", "name", "function", "sources", "window", "every", "params", "inputs", "normalise", "unit",
              "description")
    docs = feature_docs(registry)
    rows = [header]
    for i, f in enumerate(registry.features):
        norm = f"{f.normalise.method} {_pairs(f.normalise.params)}" if f.normalise else ""
        window = format_duration(f.window_ns) if f.window_ns is not None else ""
        rows.append((str(i), f.name, f.function, ",".join(f.sources), window, format_duration(f.every_ns),
                     _pairs(f.params), ",".join(f.inputs), norm, *docs[f.name]))
    widths = [max(len(r[k]) for r in rows) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    title = f"registry {registry.source} (version {registry.version}, hash {registry.content_hash})"
    return "\n".join([title, *lines])


def feature_docs(registry: Registry) -> dict[str, tuple[str, str]]:
    """Unit and one-line description of every feature, by name (a `ref` takes its input's, a z-score its own)."""
    docs: dict[str, tuple[str, str]] = {}
    for i in registry.order:  # computation order: a feature's inputs come first
        f = registry.features[i]
        docs[f.name] = _feature_doc(f, docs)
    return {f.name: docs[f.name] for f in registry.features}


def _feature_doc(f: FeatureDef, known: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """Unit and description of `f`, given those of the features it reads."""
    from registry import format_duration
    from registry.catalog import FUNCTIONS, NORMALISATION_DOCS

    spec = FUNCTIONS[f.function]
    unit, text = spec.unit, _with_params(spec.description, f)
    if f.inputs:
        unit, text = known[f.inputs[0]]
        text = f"{f.inputs[0]}: {text}"
    if f.window_ns is not None:
        window = format_duration(f.window_ns)
        text = text.replace("the window", f"the last {window}") if "the window" in text else f"{text} ({window})"
    if f.normalise is not None:
        unit = NORMALISATION_DOCS[f.normalise.method][0]
        every = format_duration(f.every_ns)
        text = f"{f.normalise.method} over the last n={f.normalise.n} values (one per {every}) of {text}"
    return unit, text


def _with_params(text: str, f: FeatureDef) -> str:
    """The catalogue description with this feature's parameter values in place of their `names`."""
    for k, v in f.params:
        text = text.replace(f"`{k}`", str(v))
    return text


def functions() -> str:
    """Return the catalogue: per function its unit, sources, window, parameters with ranges and description."""
    from registry.catalog import FUNCTIONS, NORMALISATION_DOCS, NORMALISATIONS

    blocks = []
    for spec in FUNCTIONS.values():
        lines = [f"{spec.name} [{spec.unit}]  sources: {','.join(sorted(spec.sources))}"
                 + ("  window: required" if spec.needs_window else "")
                 + (f"  inputs: {spec.n_inputs}" if spec.n_inputs else ""),
                 f"    {spec.description}", f"    = {spec.doc}"]
        lines += [f"    {name}: {param_text(p)}" for name, p in spec.params.items()]
        blocks.append("\n".join(lines))
    for method, params in NORMALISATIONS.items():
        unit, text = NORMALISATION_DOCS[method]
        lines = [f"normalise: {method} [{unit}]", f"    {text}"]
        lines += [f"    {name}: {param_text(p)}" for name, p in params.items()]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def param_text(p: ParamSpec) -> str:
    """One parameter's type, range or choices, and default or `required`."""
    text = p.type.__name__
    if p.choices:
        text += f", one of {'|'.join(str(c) for c in p.choices)}"
    elif p.min is not None or p.max is not None:
        lo = "-inf" if p.min is None else _num(p.min)
        hi = "inf" if p.max is None else _num(p.max)
        text += f" in [{lo}, {hi}]"
    if p.required:
        text += ", required"
    elif p.default is not None:
        text += f", default {p.default}"
    return text


def _num(x: float) -> str:
    """A range bound without a needless `.0` (1000, not 1000.0)."""
    return str(int(x)) if float(x).is_integer() else str(x)


def _pairs(params: tuple[tuple[str, Any], ...]) -> str:
    """Spell parameters as ``k=v`` words."""
    return " ".join(f"{k}={v}" for k, v in params)
